//! A hung daemon on the simulated board makes its watchdog fire: the real skerryd,
//! its watchdog a simulated device outside the process (so it keeps counting while the
//! daemon is stopped), fed only while the machine is healthy.

use std::path::Path;
use std::time::{Duration, Instant};

use skerry_hil::{DaemonBoard, DaemonBoardOptions};

/// The watchdog timeout the machine config sets.
const TIMEOUT: Duration = Duration::from_secs(2);

fn config(board: &DaemonBoard) -> String {
    let probe: Vec<String> = board
        .image_health_probe()
        .iter()
        .map(|a| serde_json::to_string(a).unwrap())
        .collect();
    format!(
        "apiVersion: skerry.dev/v1alpha1
kind: MachineConfig
hostname: sim-wd
---
apiVersion: skerry.dev/v1alpha1
kind: ServiceConfig
name: app
command: [sleep, \"3600\"]
healthChecks:
  - name: image
    probe:
      exec:
        command: [{}]
    interval: 500ms
    timeout: 400ms
    critical: true
---
apiVersion: skerry.dev/v1alpha1
kind: WatchdogConfig
device:
  linux:
    path: /dev/watchdog0
timeout: 2s
gate: [app/image]
",
        probe.join(", ")
    )
}

fn board(dir: &Path) -> DaemonBoard {
    let options = DaemonBoardOptions {
        watchdog: true,
        ..DaemonBoardOptions::default()
    };
    let board = DaemonBoard::build(dir, Path::new(env!("CARGO_BIN_EXE_skerryd")), options).unwrap();
    std::fs::write(board.root().join("config.yaml"), config(&board)).unwrap();
    board
}

#[test]
fn a_hung_daemon_makes_the_watchdog_fire_and_the_board_comes_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut board = board(dir.path());
    board.power_on().unwrap();
    let device = board.watchdog().unwrap();
    // Healthy: armed with the config's timeout and fed, over several timeouts.
    let fed = device.wait_until(Duration::from_secs(60), |r| r.feed_count >= 3);
    assert!(
        fed.is_some(),
        "never fed: {:?}\n{}",
        device.record(),
        board.logs()
    );
    std::thread::sleep(TIMEOUT * 2);
    let record = device.record();
    assert!(
        record.fires.is_empty(),
        "fired while healthy: {record:?}\n{}",
        board.logs()
    );
    assert_eq!(record.timeout, Some(TIMEOUT), "{record:?}");

    // Hung: SIGSTOP. The device fires within timeout + 10% of the last feed.
    let stopped_at = Instant::now();
    board.signal("STOP").unwrap();
    let record = device
        .wait_until(TIMEOUT * 5, |r| !r.fires.is_empty())
        .unwrap_or_else(|| panic!("no fire after SIGSTOP: {:?}", device.record()));
    let fired = record.fires[0];
    let after = fired.saturating_duration_since(record.last_feed.unwrap());
    assert!(fired > stopped_at, "fired before the daemon hung");
    assert!(
        after >= TIMEOUT && after <= TIMEOUT.mul_f64(1.1),
        "fired {after:?} after the last feed; timeout {TIMEOUT:?}"
    );
    assert!(
        record.closes.is_empty(),
        "a hung daemon must not disarm: {record:?}"
    );

    // The reset: the board powers on again and the daemon arms the watchdog anew.
    board.power_cut();
    board.power_on().unwrap();
    let device = board.watchdog().unwrap();
    let rearmed = device.wait_until(Duration::from_secs(60), |r| {
        r.arms.len() >= 2 && r.last_feed > Some(fired)
    });
    assert!(
        rearmed.is_some(),
        "not armed again after the reset: {:?}\n{}",
        device.record(),
        board.logs()
    );
}

#[test]
fn an_orderly_stop_disarms_the_watchdog() {
    let dir = tempfile::tempdir().unwrap();
    let mut board = board(dir.path());
    board.power_on().unwrap();
    let device = board.watchdog().unwrap();
    assert!(
        device
            .wait_until(Duration::from_secs(60), |r| r.feed_count >= 2)
            .is_some(),
        "{}",
        board.logs()
    );
    board.stop().unwrap();
    let device = board.watchdog().unwrap();
    let record = device.record();
    assert_eq!(record.closes.len(), 1, "{record:?}");
    std::thread::sleep(TIMEOUT + TIMEOUT / 2);
    assert!(device.record().fires.is_empty(), "{:?}", device.record());
}
