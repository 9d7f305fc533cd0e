//! Fuzzes the bounded patch decoder: a hostile patch against a fixed base region gives the
//! named chunk or an error, never a panic or an allocation past our limits.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[expect(
    dead_code,
    reason = "each target calls one entry point of the shared module"
)]
#[path = "../entries/patch.rs"]
mod entries;

fuzz_target!(|data: &[u8]| {
    let _ = entries::apply(data);
});
