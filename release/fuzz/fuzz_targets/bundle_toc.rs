//! Fuzzes the offline bundle's header and table of contents: any bytes give a table or
//! an error, never a panic or an allocation past our limits.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[expect(
    dead_code,
    reason = "each target calls one entry point of the shared module"
)]
#[path = "../entries/bundle.rs"]
mod entries;

fuzz_target!(|data: &[u8]| {
    let _ = entries::toc(data);
});
