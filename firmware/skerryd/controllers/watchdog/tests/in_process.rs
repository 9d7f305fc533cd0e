//! The subsystem in this process against the simulated board's device (real time, a
//! real socket): a healthy machine is fed and never reset; an orderly stop disarms;
//! a controller stuck in reconcile and a stalled fsync each make the device fire within
//! its timeout + 10% of the last feed.

mod common;

use std::ffi::OsStr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{
    apply_config, apply_config_gated, assert_fires_in_time, context, events, start, wait_for_feeds,
    SOCKET,
};
use skerry_medium::{Directory, HostDir, MediumError};
use skerry_runtime::{Controller, ControllerError, Input, Output, ReconcileContext, Requeue};
use skerry_watchdog::simulated::SimulatedWatchdogDevice;
use skerryd_watchdog::{CriticalControllers, WatchdogOptions, WatchdogStatus, STATUS_ID};

const TIMEOUT: Duration = Duration::from_secs(2);

/// Clears or sets a flag when dropped, so a failing assertion still lets a blocked
/// thread go (the runtime waits for its threads when dropped).
struct OnDrop(Arc<AtomicBool>, bool);

impl Drop for OnDrop {
    fn drop(&mut self) {
        self.0.store(self.1, Ordering::SeqCst);
    }
}

fn device(root: &Path) -> SimulatedWatchdogDevice {
    SimulatedWatchdogDevice::bind(root.join(SOCKET)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_machine_is_fed_and_an_orderly_stop_disarms() {
    let root = tempfile::tempdir().unwrap();
    let (context, _stop) = context(root.path());
    let device = device(root.path());
    let handle = start(&context, WatchdogOptions::default(), |_| {});
    apply_config(&context, TIMEOUT);
    let first = wait_for_feeds(&device, 1);
    assert_eq!(first.arms.len(), 1);
    assert_eq!(first.arms[0].1, TIMEOUT);

    tokio::time::sleep(TIMEOUT * 4).await;
    let record = device.record();
    assert!(
        record.fires.is_empty(),
        "a healthy machine was reset: {record:?}"
    );
    assert!(
        record.feed_count >= first.feed_count + 8,
        "only {} feeds over four timeouts",
        record.feed_count
    );
    let status = context.state.get::<WatchdogStatus>(STATUS_ID).unwrap().spec;
    assert!(status.armed, "{status:?}");
    assert_eq!(status.timeout_ms, Some(2000));
    assert!(status.withheld.is_empty(), "{status:?}");
    assert!(status.device.starts_with("simulated:"), "{status:?}");
    assert!(events(&context)
        .iter()
        .any(|(kind, _)| kind == "watchdog.armed"));

    // The daemon's orderly stop: controllers first, then the stop hooks.
    handle.shutdown().await;
    context.stop_hooks.run(Duration::from_secs(10)).await;
    let closed = device
        .wait_until(Duration::from_secs(5), |r| !r.closes.is_empty())
        .expect("the stop hook sent the magic close");
    assert!(!device.is_armed());
    std::thread::sleep(TIMEOUT * 2);
    assert!(
        device.record().fires.is_empty(),
        "fired after an orderly stop"
    );
    assert!(events(&context)
        .iter()
        .any(|(kind, _)| kind == "watchdog.disarmed"));
    assert!(closed.feed_count > 0);
}

/// A controller that hangs inside reconcile once told to: awaiting something that
/// never comes, or (`block_thread`) blocking its executor's thread.
struct Blocker {
    hang: Arc<AtomicBool>,
    release: Arc<AtomicBool>,
    block_thread: bool,
}

impl Controller for Blocker {
    fn name(&self) -> &str {
        "blocker"
    }
    fn inputs(&self) -> Vec<Input> {
        Vec::new()
    }
    fn outputs(&self) -> Vec<Output> {
        Vec::new()
    }
    async fn reconcile(&mut self, _: &mut ReconcileContext) -> Result<Requeue, ControllerError> {
        if self.hang.load(Ordering::SeqCst) {
            while !self.release.load(Ordering::SeqCst) {
                if self.block_thread {
                    std::thread::sleep(Duration::from_millis(10));
                } else {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }
        Ok(Requeue::After(Duration::from_millis(50)))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_critical_controller_blocked_in_reconcile_makes_the_watchdog_fire() {
    let root = tempfile::tempdir().unwrap();
    let (context, _stop) = context(root.path());
    let device = device(root.path());
    let hang = Arc::new(AtomicBool::new(false));
    let release = Arc::new(AtomicBool::new(false));
    let options = WatchdogOptions {
        critical: CriticalControllers::Named(vec!["blocker".into()]),
        reconcile_deadline: Some(TIMEOUT / 2),
        ..WatchdogOptions::default()
    };
    let handle = start(&context, options, |runtime| {
        runtime
            .register(Blocker {
                hang: hang.clone(),
                release: release.clone(),
                block_thread: false,
            })
            .unwrap();
    });
    let _release = OnDrop(release.clone(), true);
    apply_config(&context, TIMEOUT);
    wait_for_feeds(&device, 4);

    let fault_at = Instant::now();
    hang.store(true, Ordering::SeqCst);
    let record = assert_fires_in_time(&device, TIMEOUT, fault_at, TIMEOUT * 6);
    let status = context.state.get::<WatchdogStatus>(STATUS_ID).unwrap().spec;
    assert!(
        status.withheld.iter().any(|w| w.contains("\"blocker\"")),
        "{status:?}"
    );
    assert!(
        events(&context)
            .iter()
            .any(|(kind, message)| kind == "watchdog.starving" && message.contains("blocker")),
        "{:?}",
        events(&context)
    );
    assert!(record.feed_count >= 4);
    release.store(true, Ordering::SeqCst);
    handle.shutdown().await;
}

#[test]
fn a_controller_blocking_the_executor_thread_makes_the_watchdog_fire() {
    let root = tempfile::tempdir().unwrap();
    let (context, _stop) = context(root.path());
    let device = device(root.path());
    let hang = Arc::new(AtomicBool::new(false));
    let release = Arc::new(AtomicBool::new(false));
    let _release = OnDrop(release.clone(), true);
    // The daemon on a single-threaded executor of its own, so the blocked thread is
    // all it has (the feed loop included).
    let daemon = std::thread::spawn({
        let (context, hang, release) = (context.clone(), hang.clone(), release.clone());
        move || {
            let executor = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            executor.block_on(async move {
                let handle = start(&context, WatchdogOptions::default(), |runtime| {
                    runtime
                        .register(Blocker {
                            hang,
                            release: release.clone(),
                            block_thread: true,
                        })
                        .unwrap();
                });
                apply_config(&context, TIMEOUT);
                while !release.load(Ordering::SeqCst) {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                handle.shutdown().await;
            });
        }
    });
    wait_for_feeds(&device, 4);
    let fault_at = Instant::now();
    hang.store(true, Ordering::SeqCst);
    let record = assert_fires_in_time(&device, TIMEOUT, fault_at, TIMEOUT * 6);
    assert!(record.feed_count >= 4);
    release.store(true, Ordering::SeqCst);
    daemon.join().unwrap();
}

/// The host directory, whose file sync blocks while `stall` is set.
struct StallingDir {
    inner: HostDir,
    stall: Arc<AtomicBool>,
}

impl Directory for StallingDir {
    fn path(&self) -> &Path {
        self.inner.path()
    }
    fn len(&self, name: &OsStr) -> Result<u64, MediumError> {
        self.inner.len(name)
    }
    fn read_at(&self, name: &OsStr, offset: u64, len: usize) -> Result<Vec<u8>, MediumError> {
        self.inner.read_at(name, offset, len)
    }
    fn write_at(&mut self, name: &OsStr, offset: u64, data: &[u8]) -> Result<(), MediumError> {
        self.inner.write_at(name, offset, data)
    }
    fn write_new(&mut self, name: &OsStr, like: &OsStr, data: &[u8]) -> Result<(), MediumError> {
        self.inner.write_new(name, like, data)
    }
    fn set_len(&mut self, name: &OsStr, len: u64) -> Result<(), MediumError> {
        self.inner.set_len(name, len)
    }
    fn sync_file(&mut self, name: &OsStr) -> Result<(), MediumError> {
        while self.stall.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(10));
        }
        self.inner.sync_file(name)
    }
    fn rename(&mut self, from: &OsStr, to: &OsStr) -> Result<(), MediumError> {
        self.inner.rename(from, to)
    }
    fn remove(&mut self, name: &OsStr) -> Result<(), MediumError> {
        self.inner.remove(name)
    }
    fn sync_dir(&mut self) -> Result<(), MediumError> {
        self.inner.sync_dir()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_fsync_makes_the_watchdog_fire() {
    let root = tempfile::tempdir().unwrap();
    let (context, _stop) = context(root.path());
    let device = device(root.path());
    let stall = Arc::new(AtomicBool::new(false));
    let options = WatchdogOptions {
        // Only the state write is under test: no controller is critical but the
        // heartbeat, so the probe's stuck reconcile is caught by its lease alone.
        critical: CriticalControllers::Named(Vec::new()),
        state_directory: Some(Box::new(StallingDir {
            inner: HostDir::new(context.area.state.clone()),
            stall: stall.clone(),
        })),
        ..WatchdogOptions::default()
    };
    let handle = start(&context, options, |_| {});
    apply_config(&context, TIMEOUT);
    wait_for_feeds(&device, 4);
    let probe = context.area.state.join(skerryd_watchdog::PROBE_FILE);
    assert!(probe.exists(), "the probe wrote {}", probe.display());

    let _unstall = OnDrop(stall.clone(), false);
    let fault_at = Instant::now();
    stall.store(true, Ordering::SeqCst);
    assert_fires_in_time(&device, TIMEOUT, fault_at, TIMEOUT * 6);
    let status = context.state.get::<WatchdogStatus>(STATUS_ID).unwrap().spec;
    assert!(
        status.withheld.iter().any(|w| w.contains("state write")),
        "{status:?}"
    );
    stall.store(false, Ordering::SeqCst);
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gated_health_check_that_fails_makes_the_watchdog_fire() {
    let root = tempfile::tempdir().unwrap();
    let (context, _stop) = context(root.path());
    let device = device(root.path());
    // The services subsystem's part: it reports the critical check into the vitals.
    let check = context
        .vitals
        .health_check("web/http", Duration::from_secs(1))
        .unwrap();
    let failing = Arc::new(AtomicBool::new(false));
    let checker = tokio::spawn({
        let failing = failing.clone();
        async move {
            loop {
                if failing.load(Ordering::SeqCst) {
                    check.fail("HTTP 503 from 127.0.0.1:8080/healthz");
                } else {
                    check.pass();
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    });
    let handle = start(&context, WatchdogOptions::default(), |_| {});
    apply_config_gated(&context, TIMEOUT, &["web/http"]);
    wait_for_feeds(&device, 4);

    let fault_at = Instant::now();
    failing.store(true, Ordering::SeqCst);
    assert_fires_in_time(&device, TIMEOUT, fault_at, TIMEOUT * 4);
    let status = context.state.get::<WatchdogStatus>(STATUS_ID).unwrap().spec;
    assert!(
        status.withheld.iter().any(|w| w.contains("HTTP 503")),
        "{status:?}"
    );
    checker.abort();
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gated_health_check_nobody_reports_is_never_fed() {
    let root = tempfile::tempdir().unwrap();
    let (context, _stop) = context(root.path());
    let device = device(root.path());
    let handle = start(&context, WatchdogOptions::default(), |_| {});
    apply_config_gated(&context, TIMEOUT, &["db/ping"]);
    let record = device
        .wait_until(TIMEOUT * 4, |r| !r.fires.is_empty())
        .expect("an unfed watchdog fires");
    assert_eq!(record.feed_count, 0, "{record:?}");
    let armed_at = record.arms[0].0;
    let after = record.fires[0].saturating_duration_since(armed_at);
    assert!(
        after <= TIMEOUT.mul_f64(1.1),
        "fired {after:?} after arming"
    );
    let status = context.state.get::<WatchdogStatus>(STATUS_ID).unwrap().spec;
    assert!(
        status
            .withheld
            .iter()
            .any(|w| w.contains("\"db/ping\" is required")),
        "{status:?}"
    );
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_device_is_reported_once_and_armed_when_it_appears() {
    let root = tempfile::tempdir().unwrap();
    let (context, _stop) = context(root.path());
    let handle = start(&context, WatchdogOptions::default(), |_| {});
    apply_config(&context, TIMEOUT);
    let socket = root.path().join(SOCKET);
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        let status = context.state.get::<WatchdogStatus>(STATUS_ID).ok();
        if let Some(status) = status.as_ref().filter(|s| s.spec.error.is_some()) {
            break status.spec.clone();
        }
        assert!(Instant::now() < deadline, "no error reported: {status:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let error = status.error.unwrap();
    assert!(!status.armed);
    assert!(
        error.contains(&socket.display().to_string()) && error.contains("no simulated watchdog"),
        "{error}"
    );
    // The retry (5 s later) fails the same way without a second event; then the board's
    // device appears and the next retry arms it.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let failed = |context| {
        events(context)
            .iter()
            .filter(|(kind, _)| kind == "watchdog.failed")
            .count()
    };
    assert_eq!(failed(&context), 1, "{:?}", events(&context));
    let device = SimulatedWatchdogDevice::bind(&socket).unwrap();
    wait_for_feeds(&device, 2);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let status = context.state.get::<WatchdogStatus>(STATUS_ID).unwrap().spec;
    assert!(status.armed && status.error.is_none(), "{status:?}");
    handle.shutdown().await;
}
