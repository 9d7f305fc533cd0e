//! Fuzzes chunk index page decoding: hostile bodies against a fixed head, and arbitrary
//! entries built into a head and decoded back past the hash gate.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[expect(
    dead_code,
    reason = "each target calls one entry point of the shared module"
)]
#[path = "../entries/chunks.rs"]
mod entries;

fuzz_target!(|data: &[u8]| {
    let _ = entries::page(data);
});
