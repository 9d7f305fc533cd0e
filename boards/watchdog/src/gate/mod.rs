//! The health gate: the watchdog is fed only while the machine is healthy.
//!
//! The callers renew what they vouch for, and the feed loop looks at all of it before
//! every feed:
//! - each critical controller holds a [`Lease`] and renews it on every reconcile;
//! - the state store holds a [`Lease`] and renews it on every completed (synced) write;
//! - each critical health check holds a [`HealthReport`] and reports pass or fail; a pass
//!   goes stale after its `max_age`, so a checker that hangs counts as failing.
//!
//! The loop wakes on a timer, but the timer alone never feeds: a stuck controller, a write
//! that never completes or a hung checker stops the feeds within its deadline, and a
//! frozen process stops them at once, so the watchdog resets the board one timeout later.
//!
//! Layout: [`vitals`] holds the leases and reports; [`feeder`] is the feed loop.

pub mod feeder;
pub mod vitals;

pub use feeder::{GateConfig, GateError, GateReport, WatchdogGate};
pub use vitals::{
    HealthReport, Lease, Problem, Unhealthy, VitalKind, Vitals, VitalsError, MAX_REASON_LEN,
    MAX_VITALS,
};
