//! A device's watchdog is armed by PID 1 before the daemon starts (docs/os-image.md), so
//! the daemon must keep it fed even when the machine config has no watchdog section:
//! with none, it feeds with the timeout the board armed; a config's timeout wins. A
//! development board (nothing armed at boot) stays unarmed without a config.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{apply_config, context, context_armed_at_boot, start, wait_for_feeds, SOCKET};
use skerry_watchdog::simulated::SimulatedWatchdogDevice;
use skerryd_watchdog::WatchdogOptions;

fn device(root: &Path) -> SimulatedWatchdogDevice {
    SimulatedWatchdogDevice::bind(root.join(SOCKET)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watchdog_armed_at_boot_is_fed_without_a_config() {
    let root = tempfile::tempdir().unwrap();
    let (context, _stop) = context_armed_at_boot(root.path(), Some(2));
    let device = device(root.path());
    let handle = start(&context, WatchdogOptions::default(), |_| {});
    let first = wait_for_feeds(&device, 1);
    assert_eq!(first.arms[0].1, Duration::from_secs(2), "{first:?}");
    tokio::time::sleep(Duration::from_secs(5)).await;
    let record = device.record();
    assert!(record.fires.is_empty(), "reset with no config: {record:?}");
    assert!(record.feed_count >= first.feed_count + 3, "{record:?}");

    // A config's timeout replaces the board's.
    apply_config(&context, Duration::from_secs(3));
    let rearmed = device
        .wait_until(Duration::from_secs(20), |r| {
            r.arms.iter().any(|(_, t)| *t == Duration::from_secs(3))
        })
        .expect("re-armed with the config's timeout");
    assert!(rearmed.fires.is_empty(), "{rearmed:?}");
    handle.shutdown().await;
    context.stop_hooks.run(Duration::from_secs(10)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_development_board_without_a_config_is_not_armed() {
    let root = tempfile::tempdir().unwrap();
    let (context, _stop) = context(root.path());
    let device = device(root.path());
    let handle = start(&context, WatchdogOptions::default(), |_| {});
    tokio::time::sleep(Duration::from_secs(2)).await;
    let record = device.record();
    assert!(record.arms.is_empty(), "armed with no config: {record:?}");
    handle.shutdown().await;
    context.stop_hooks.run(Duration::from_secs(10)).await;
}
