//! Fuzzes the GPT reader and attribute writer: any bytes as a disk image must give a
//! state or an error, never a panic, and a committed state must load back unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = skerry_boot_state::gpt::fuzz_parse(data);
});
