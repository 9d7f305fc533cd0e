//! skerryd's watchdog subsystem: the board's watchdog is fed only while the machine is
//! healthy, never from a ticker that keeps running while the daemon is stuck.
//!
//! The gate ([`skerry_watchdog::gate::WatchdogGate`]) feeds only while every vital in
//! `context.vitals` is fresh. This crate creates the vitals the daemon itself vouches
//! for, each renewed only by the work it stands for:
//!
//! - controller liveness: the `watchdog-heartbeat` controller requeues itself and renews
//!   the heartbeat lease in its reconcile, so a stuck runtime or async executor stops it;
//!   it also renews a lease per critical controller, only while that controller is not
//!   stuck inside one reconcile longer than its reconcile deadline (the runtime's
//!   [`skerry_runtime::Activity`]; 30 s unless [`WatchdogOptions`] says otherwise);
//! - state writes: the `watchdog-state-probe` controller writes and syncs a small file
//!   in the state directory through a [`skerry_medium::Directory`] and renews the
//!   state-write lease only when the sync returned;
//! - critical health checks: the services subsystem reports them into the vitals; the
//!   config's gate list is required, so a gated check nobody runs withholds the feeds.
//!
//! Layout: [`options`] (what is critical, deadlines), [`driver`] (the board's device),
//! [`status`] (the `watchdog` resource), `heartbeat`, `probe` and `gate` (the
//! controllers and the stop hook).

pub mod driver;
mod gate;
mod heartbeat;
pub mod options;
mod probe;
pub use probe::PROBE_FILE;
pub mod status;

use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use skerry_runtime::Runtime;
use skerryd_core::Context;

pub use options::{CriticalControllers, WatchdogOptions, DEFAULT_RECONCILE_DEADLINE};
pub use status::{WatchdogStatus, STATUS_ID, WATCHDOG_NAMESPACE};

/// The name of the state-write lease in the vitals.
pub const STATE_WRITE_VITAL: &str = "state write probe";
/// The name of the heartbeat lease in the vitals.
pub const HEARTBEAT_VITAL: &str = "runtime heartbeat";

/// The deadlines in effect while the watchdog is armed; `None` while it is not.
pub(crate) type SharedTuning = Arc<Mutex<Option<options::Tuning>>>;

/// Registers this subsystem's controllers on `runtime` with the default options: every
/// controller of the runtime is critical, the probe writes into `context.area.state`.
pub fn register(runtime: &mut Runtime, context: &Context) -> anyhow::Result<()> {
    register_with(runtime, context, WatchdogOptions::default())
}

/// Registers this subsystem's controllers with `options`.
pub fn register_with(
    runtime: &mut Runtime,
    context: &Context,
    mut options: WatchdogOptions,
) -> anyhow::Result<()> {
    let tuning: SharedTuning = Arc::default();
    let placeholder = options::IDLE_DEADLINE;
    let heartbeat_lease = context
        .vitals
        .controller(HEARTBEAT_VITAL, placeholder)
        .context("registering the watchdog's heartbeat")?;
    let state_lease = context
        .vitals
        .state_writes(STATE_WRITE_VITAL, placeholder)
        .context("registering the watchdog's state-write probe")?;
    let directory = options.state_directory(context);
    runtime.register(heartbeat::Heartbeat::new(
        heartbeat_lease,
        context.vitals.clone(),
        runtime.activity(),
        options.critical.clone(),
        tuning.clone(),
    ))?;
    runtime.register(probe::StateProbe::new(
        directory,
        state_lease,
        tuning.clone(),
    ))?;
    let controller = gate::GateController::new(
        context,
        tuning,
        options.deadline,
        options.reconcile_deadline,
    );
    controller.add_stop_hook(&context.stop_hooks);
    runtime.register(controller)?;
    Ok(())
}
