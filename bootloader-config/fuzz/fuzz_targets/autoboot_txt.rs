//! Fuzzes the `autoboot.txt` parser and rewriter: any bytes must give a state or an
//! error, never a panic, and a rewrite must mean what it says.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = skerry_boot_state::tryboot::fuzz_parse(data);
});
