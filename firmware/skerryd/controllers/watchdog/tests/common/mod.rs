//! A machine root with a simulated board watchdog, and the subsystem running on it.
#![allow(dead_code)] // each test binary uses its own part

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use skerry_boot_state::{BootState, SlotName, StoreSpec};
use skerry_config::kinds::common::HumanDuration;
use skerry_config::kinds::{WatchdogConfig, WatchdogDevice};
use skerry_runtime::{Runtime, RuntimeHandle, RuntimeOptions, State};
use skerry_watchdog::clock::TokioClock;
use skerry_watchdog::gate::Vitals;
use skerry_watchdog::simulated::{DeviceRecord, SimulatedWatchdogDevice};
use skerryd_core::resources::{ActiveWatchdog, SINGLETON};
use skerryd_core::{
    BoardDefinition, BoardWatchdog, BootView, Context, EventLog, Layout, RootPower, SlotDefinition,
    StopHooks, VarArea,
};
use skerryd_watchdog::WatchdogOptions;
use tokio::sync::watch;

/// The board's socket, relative to the root (as board.json gives it).
pub const SOCKET: &str = "run/watchdog.sock";

/// The subsystem's context on a machine root at `root`.
pub fn context(root: &Path) -> (Context, watch::Sender<bool>) {
    context_armed_at_boot(root, None)
}

/// The same, with a board that armed its watchdog at boot with `secs` (a device).
pub fn context_armed_at_boot(
    root: &Path,
    armed_at_boot_secs: Option<u32>,
) -> (Context, watch::Sender<bool>) {
    let layout = Layout::new(root);
    layout.create_dirs().unwrap();
    let board = BoardDefinition {
        name: "sim".into(),
        boot_store: "grub:boot/grubenv".into(),
        slots: ["A", "B"]
            .map(|name| SlotDefinition {
                name: name.into(),
                image: PathBuf::from(format!("slots/{name}.img")),
            })
            .into(),
        watchdog: BoardWatchdog::Simulated {
            socket: SOCKET.into(),
            armed_at_boot_secs,
        },
        verified_root: false,
    };
    let slots = [SlotName::new("A").unwrap(), SlotName::new("B").unwrap()];
    let boot = BootView {
        spec: StoreSpec::Grub {
            path: root.join("boot/grubenv"),
        },
        booted: None,
        at_start: BootState::new(&slots, 3).unwrap(),
    };
    let area = VarArea::select(&layout.var(), None, false).unwrap();
    let (stop, stopping) = watch::channel(false);
    let context = Context {
        power: Arc::new(RootPower::new(layout.power_request(), stop.clone())),
        layout,
        board,
        boot,
        area,
        state: State::in_memory(),
        events: EventLog::new(1),
        vitals: Vitals::new(TokioClock),
        stopping,
        stop_hooks: StopHooks::default(),
        daemon_version: "test".into(),
    };
    (context, stop)
}

/// Puts a `WatchdogConfig` with `timeout` in effect, as the config subsystem would.
pub fn apply_config(context: &Context, timeout: Duration) {
    apply_config_gated(context, timeout, &[]);
}

/// Puts a `WatchdogConfig` with `timeout` gated on `checks` in effect.
pub fn apply_config_gated(context: &Context, timeout: Duration, checks: &[&str]) {
    let config = WatchdogConfig {
        device: WatchdogDevice::Linux {
            path: "/dev/watchdog0".into(),
        },
        timeout: HumanDuration(timeout),
        gate: checks.iter().map(|c| (*c).to_owned()).collect(),
    };
    context
        .state
        .apply_owned(SINGLETON, Some("config"), ActiveWatchdog(config))
        .unwrap();
}

/// Registers the subsystem (and `extra`) and starts the runtime.
pub fn start(
    context: &Context,
    options: WatchdogOptions,
    extra: impl FnOnce(&mut Runtime),
) -> RuntimeHandle {
    let mut runtime = Runtime::new(context.state.clone(), RuntimeOptions::default());
    extra(&mut runtime);
    skerryd_watchdog::register_with(&mut runtime, context, options).unwrap();
    runtime.start()
}

/// Waits (real time) until the device has at least `feeds` feeds.
pub fn wait_for_feeds(device: &SimulatedWatchdogDevice, feeds: u64) -> DeviceRecord {
    device
        .wait_until(Duration::from_secs(30), |r| r.feed_count >= feeds)
        .unwrap_or_else(|| panic!("no {feeds} feeds within 30 s: {:?}", device.record()))
}

/// Waits until the device fires, then checks it fired within `timeout` + 10% of the
/// last feed and after `fault_at`; returns the record.
pub fn assert_fires_in_time(
    device: &SimulatedWatchdogDevice,
    timeout: Duration,
    fault_at: Instant,
    limit: Duration,
) -> DeviceRecord {
    let record = device
        .wait_until(limit, |r| !r.fires.is_empty())
        .unwrap_or_else(|| {
            panic!(
                "the watchdog did not fire within {limit:?}: {:?}",
                device.record()
            )
        });
    let fired = record.fires[0];
    let last_feed = record.last_feed.expect("it was fed before the fault");
    let after = fired.saturating_duration_since(last_feed);
    assert!(fired > fault_at, "fired before the fault");
    assert!(
        after >= timeout && after <= timeout.mul_f64(1.1),
        "fired {after:?} after the last feed; timeout {timeout:?}"
    );
    assert!(record.closes.is_empty(), "disarmed: {record:?}");
    record
}

/// The event kinds and messages pushed so far.
pub fn events(context: &Context) -> Vec<(String, String)> {
    context
        .events
        .everything()
        .0
        .into_iter()
        .map(|e| (e.kind, e.message))
        .collect()
}
