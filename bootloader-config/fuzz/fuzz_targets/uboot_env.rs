//! Hostile bytes as a U-Boot environment (single, redundant, and as a data area behind a
//! correct CRC): an error is fine, a panic is a bug.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = skerry_boot_state::uboot::fuzz_parse(data);
});
