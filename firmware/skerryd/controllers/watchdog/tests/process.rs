//! The subsystem in a child process (this test binary again, with
//! `SKERRYD_WATCHDOG_CHILD_ROOT` naming the machine root) against the board's device in
//! this process: stopping the child with SIGSTOP or killing it with SIGKILL leaves the
//! device armed, and it fires within its timeout + 10% of the last feed.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{apply_config, assert_fires_in_time, context, start, wait_for_feeds, SOCKET};
use rustix::process::{kill_process, Pid, Signal};
use skerry_watchdog::simulated::SimulatedWatchdogDevice;
use skerryd_core::Layout;
use skerryd_watchdog::WatchdogOptions;

const TIMEOUT: Duration = Duration::from_secs(2);
const CHILD_ENV: &str = "SKERRYD_WATCHDOG_CHILD_ROOT";
/// Set: the child crashes after this many milliseconds (its executor, every task and the
/// watchdog driver dropped, then a panic).
const CRASH_ENV: &str = "SKERRYD_WATCHDOG_CHILD_CRASH_MS";

/// The child half: the subsystem on the daemon's kind of executor, until killed.
fn run_child(root: &Path) {
    let executor = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    executor.block_on(async {
        let (context, _stop) = context(root);
        let _handle = start(&context, WatchdogOptions::default(), |_| {});
        apply_config(&context, TIMEOUT);
        match std::env::var(CRASH_ENV).ok().and_then(|ms| ms.parse().ok()) {
            Some(ms) => tokio::time::sleep(Duration::from_millis(ms)).await,
            None => std::future::pending::<()>().await,
        }
    });
    drop(executor);
    panic!("the child daemon crashes");
}

/// Starts the child running `test` on `root`, or runs the child half if this is it.
fn spawn_or_be_child(
    test: &str,
    crash_after: Option<Duration>,
) -> Option<(tempfile::TempDir, SimulatedWatchdogDevice, Child)> {
    if let Ok(root) = std::env::var(CHILD_ENV) {
        run_child(Path::new(&root));
        return None;
    }
    let root = tempfile::tempdir().unwrap();
    Layout::new(root.path()).create_dirs().unwrap();
    let device = SimulatedWatchdogDevice::bind(root.path().join(SOCKET)).unwrap();
    let mut command = Command::new(std::env::current_exe().unwrap());
    if let Some(after) = crash_after {
        command.env(CRASH_ENV, after.as_millis().to_string());
    }
    let child = command
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, root.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    Some((root, device, child))
}

fn pid(child: &Child) -> Pid {
    Pid::from_raw(i32::try_from(child.id()).unwrap()).unwrap()
}

fn process_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(") ")?.1.chars().next()
}

/// Kills the child when the test ends, however it ends.
struct Reap(Child);

impl Drop for Reap {
    fn drop(&mut self) {
        let _ = kill_process(pid(&self.0), Signal::KILL);
        let _ = self.0.wait();
    }
}

#[test]
fn a_sigstopped_daemon_makes_the_watchdog_fire() {
    let Some((_root, device, child)) =
        spawn_or_be_child("a_sigstopped_daemon_makes_the_watchdog_fire", None)
    else {
        return;
    };
    let child = Reap(child);
    let before = wait_for_feeds(&device, 4);
    assert!(before.fires.is_empty(), "fired while the child was healthy");

    let fault_at = Instant::now();
    kill_process(pid(&child.0), Signal::STOP).unwrap();
    let started = Instant::now();
    while process_state(child.0.id()) != Some('T') {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the child did not stop"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let stopped_at = Instant::now();
    let record = assert_fires_in_time(&device, TIMEOUT, fault_at, TIMEOUT * 3);
    // A datagram sent just before the stop may still be read after it; none later.
    assert!(
        record.last_feed.unwrap() <= stopped_at + Duration::from_millis(100),
        "a feed arrived from the stopped child: {record:?}"
    );
    let after = device.record();
    assert_eq!(
        after.feed_count, record.feed_count,
        "a stopped child fed it"
    );
}

#[test]
fn a_sigkilled_daemon_does_not_disarm_and_the_watchdog_fires() {
    let Some((_root, device, child)) = spawn_or_be_child(
        "a_sigkilled_daemon_does_not_disarm_and_the_watchdog_fires",
        None,
    ) else {
        return;
    };
    let mut child = Reap(child);
    wait_for_feeds(&device, 4);
    let fault_at = Instant::now();
    kill_process(pid(&child.0), Signal::KILL).unwrap();
    child.0.wait().unwrap();
    let record = assert_fires_in_time(&device, TIMEOUT, fault_at, TIMEOUT * 3);
    assert!(
        record.closes.is_empty(),
        "a killed daemon disarmed: {record:?}"
    );
}

#[test]
fn a_daemon_that_crashes_does_not_disarm_and_the_watchdog_fires() {
    let crash_after = TIMEOUT * 2;
    let Some((_root, device, child)) = spawn_or_be_child(
        "a_daemon_that_crashes_does_not_disarm_and_the_watchdog_fires",
        Some(crash_after),
    ) else {
        return;
    };
    let mut child = Reap(child);
    wait_for_feeds(&device, 2);
    let fault_at = Instant::now();
    let status = child.0.wait().unwrap();
    assert!(!status.success(), "the child was to crash: {status}");
    let record = assert_fires_in_time(&device, TIMEOUT, fault_at, TIMEOUT * 3);
    assert!(
        record.closes.is_empty(),
        "a crashed daemon disarmed: {record:?}"
    );
}
