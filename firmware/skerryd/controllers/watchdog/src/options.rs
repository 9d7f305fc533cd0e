//! What the watchdog subsystem treats as critical, and its deadlines.

use std::fmt;
use std::time::Duration;

use skerry_medium::{Directory, HostDir};
use skerryd_core::Context;

/// Deadline of the leases before the watchdog is armed (nobody reads them then).
pub(crate) const IDLE_DEADLINE: Duration = Duration::from_secs(3600);
/// How often the heartbeat and the probe look whether the watchdog got armed.
pub(crate) const IDLE_POLL: Duration = Duration::from_millis(250);
/// The shortest deadline derived from a timeout.
const MIN_DEADLINE: Duration = Duration::from_millis(50);
/// How long a critical controller's reconcile may run unless told otherwise: some
/// reconciles wait on the network (a DHCP exchange, an SNTP poll) for seconds.
pub const DEFAULT_RECONCILE_DEADLINE: Duration = Duration::from_secs(30);

/// The controllers whose stuck reconcile withholds the feeds.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum CriticalControllers {
    /// Every controller of the runtime (registered before or after this subsystem).
    #[default]
    All,
    /// Only these (a name no controller has is never renewed: the feeds stop).
    Named(Vec<String>),
}

impl CriticalControllers {
    /// Whether `name` is critical.
    pub fn includes(&self, name: &str) -> bool {
        match self {
            Self::All => true,
            Self::Named(names) => names.iter().any(|n| n == name),
        }
    }
}

/// Tuning of the subsystem; [`Default`] is what the daemon uses.
pub struct WatchdogOptions {
    /// Which controllers are critical.
    pub critical: CriticalControllers,
    /// The longest a lease may go unrenewed (heartbeat, state write, a critical
    /// controller's reconcile); `None`: half the device's timeout.
    pub deadline: Option<Duration>,
    /// How long a critical controller may stay inside one reconcile; `None`: the longer
    /// of `deadline` and [`DEFAULT_RECONCILE_DEADLINE`].
    pub reconcile_deadline: Option<Duration>,
    /// Where the state-write probe writes and syncs; `None`: `context.area.state`.
    pub state_directory: Option<Box<dyn Directory + Send>>,
}

impl Default for WatchdogOptions {
    fn default() -> Self {
        Self {
            critical: CriticalControllers::All,
            deadline: None,
            reconcile_deadline: None,
            state_directory: None,
        }
    }
}

impl fmt::Debug for WatchdogOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WatchdogOptions")
            .field("critical", &self.critical)
            .field("deadline", &self.deadline)
            .field("reconcile_deadline", &self.reconcile_deadline)
            .field(
                "state_directory",
                &self.state_directory.as_ref().map(|d| d.path().to_owned()),
            )
            .finish()
    }
}

impl WatchdogOptions {
    pub(crate) fn state_directory(&mut self, context: &Context) -> Box<dyn Directory + Send> {
        self.state_directory
            .take()
            .unwrap_or_else(|| Box::new(HostDir::new(context.area.state.clone())))
    }
}

/// The deadlines while armed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tuning {
    /// How long the heartbeat and state-write leases may go unrenewed.
    pub deadline: Duration,
    /// How long a critical controller may stay inside one reconcile.
    pub reconcile: Duration,
    /// How often the heartbeat and the probe renew (four times per deadline).
    pub interval: Duration,
}

impl Tuning {
    /// The tuning for a device counting `timeout`, or the given deadlines.
    pub fn new(timeout: Duration, deadline: Option<Duration>, reconcile: Option<Duration>) -> Self {
        let deadline = deadline.unwrap_or(timeout / 2).max(MIN_DEADLINE);
        let reconcile = reconcile
            .unwrap_or(DEFAULT_RECONCILE_DEADLINE.max(deadline))
            .max(MIN_DEADLINE);
        Self {
            deadline,
            reconcile,
            interval: deadline / 4,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_follow_the_timeout_unless_given() {
        let tuning = Tuning::new(Duration::from_secs(10), None, None);
        assert_eq!(tuning.deadline, Duration::from_secs(5));
        assert_eq!(tuning.interval, Duration::from_millis(1250));
        assert_eq!(tuning.reconcile, DEFAULT_RECONCILE_DEADLINE);
        let long = Tuning::new(Duration::from_secs(120), None, None);
        assert_eq!(long.reconcile, Duration::from_secs(60));
        let given = Tuning::new(
            Duration::from_secs(10),
            Some(Duration::from_secs(2)),
            Some(Duration::ZERO),
        );
        assert_eq!(given.deadline, Duration::from_secs(2));
        assert_eq!(given.reconcile, MIN_DEADLINE);
        assert!(CriticalControllers::All.includes("network"));
        assert!(!CriticalControllers::Named(vec!["config".into()]).includes("network"));
    }
}
