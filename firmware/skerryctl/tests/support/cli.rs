//! Running the built `skerryctl` binary and requiring that a command succeeds.

use std::ffi::OsStr;
use std::fmt::Debug;
use std::process::Command;

/// The `skerryctl` binary under test, ready for arguments.
pub fn skerryctl() -> Command {
    Command::new(env!("CARGO_BIN_EXE_skerryctl"))
}

/// Runs `skerryctl args`, requires success and returns its standard output.
pub fn ok<A: AsRef<OsStr> + Debug>(args: &[A]) -> String {
    let out = skerryctl().args(args).output().expect("skerryctl runs");
    assert!(
        out.status.success(),
        "skerryctl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}
