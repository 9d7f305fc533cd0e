//! Running `skerryctl` with a time limit, for inputs that could make it hang (a FIFO
//! blocks whoever opens it until a writer comes).

use std::ffi::OsStr;
use std::fmt::Debug;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use super::cli::skerryctl;

/// How long one command may take before the test calls it hung.
const LIMIT: Duration = Duration::from_secs(20);

/// Runs `skerryctl args` with no standard input; kills it and says so if it is still
/// running after [`LIMIT`].
pub fn run_bounded<A: AsRef<OsStr> + Debug>(args: &[A]) -> Result<Output, String> {
    let mut child = skerryctl()
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("skerryctl runs");
    let start = Instant::now();
    loop {
        if child.try_wait().expect("waiting for skerryctl").is_some() {
            return Ok(child.wait_with_output().expect("skerryctl output"));
        }
        if start.elapsed() > LIMIT {
            child.kill().expect("killing a hung skerryctl");
            let out = child.wait_with_output().expect("skerryctl output");
            return Err(format!(
                "hung for {LIMIT:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
