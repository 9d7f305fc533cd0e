//! Commands the CLI must refuse: a non-zero exit and an error that names the problem.

use std::ffi::OsStr;
use std::fmt::Debug;

use super::cli::skerryctl;

/// Runs `skerryctl args`, requires failure with `needle` in the error, and returns the
/// whole error output for further checks.
pub fn fails<A: AsRef<OsStr> + Debug>(args: &[A], needle: &str) -> String {
    let out = skerryctl().args(args).output().expect("skerryctl runs");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "skerryctl {args:?} succeeded");
    assert!(
        err.contains(needle),
        "skerryctl {args:?}: expected \"{needle}\" in: {err}"
    );
    err
}
