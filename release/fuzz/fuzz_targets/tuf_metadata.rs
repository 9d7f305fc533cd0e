//! Fuzzes every TUF metadata parser and verifier a device runs on downloaded bytes:
//! trusted root, root rotation, timestamp, snapshot (behind its pin) and the role
//! decoders. Any bytes give an error or an acceptance, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[expect(
    dead_code,
    reason = "each target calls one entry point of the shared module"
)]
#[path = "../entries/tuf.rs"]
mod entries;

fuzz_target!(|data: &[u8]| {
    let _ = entries::metadata(data);
});
