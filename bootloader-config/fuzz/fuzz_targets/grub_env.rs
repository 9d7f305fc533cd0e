//! Hostile bytes as a GRUB environment block: an error is fine, a panic is a bug.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = skerry_boot_state::grub::fuzz_parse(data);
});
