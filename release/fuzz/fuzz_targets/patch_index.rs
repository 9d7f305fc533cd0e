//! Fuzzes the patch index decoder: any bytes give an index or an error, never a panic
//! or an allocation past our limits.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[expect(
    dead_code,
    reason = "each target calls one entry point of the shared module"
)]
#[path = "../entries/patch.rs"]
mod entries;

fuzz_target!(|data: &[u8]| {
    let _ = entries::index(data);
});
