//! What the supervisor observed: a service's state, its status as data, and the event
//! sent on every state change.

use serde::{Deserialize, Serialize};

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ExitReason {
    Code(i32),
    Signal(i32),
}

impl ExitReason {
    pub fn is_clean(self) -> bool {
        self == ExitReason::Code(0)
    }

    pub fn from_status(status: std::process::ExitStatus) -> Self {
        use std::os::unix::process::ExitStatusExt;
        match (status.code(), status.signal()) {
            (Some(code), _) => ExitReason::Code(code),
            (None, Some(signal)) => ExitReason::Signal(signal),
            // Neither a code nor a signal: only a stopped/continued status, which
            // wait() does not return; report it as a failure rather than invent one.
            (None, None) => ExitReason::Code(-1),
        }
    }
}

/// Where a service is in its life.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum ServiceState {
    /// Registered, its dependencies not yet ready.
    Waiting { on: Vec<String> },
    /// Being spawned.
    Starting,
    /// Its process runs; no health verdict yet (or it has no check).
    Running { pid: u32 },
    /// Its check passed `success_threshold` times in a row.
    Healthy { pid: u32 },
    /// Its check failed `failure_threshold` times in a row.
    Unhealthy { pid: u32 },
    /// Its process ended.
    Exited { exit: ExitReason },
    /// The process could not be started (missing program, bad working dir…).
    SpawnFailed { error: String },
    /// Waiting this long before the next start.
    BackingOff { delay_ms: u64, attempt: u32 },
    /// Stopped by request. (A process that exits for good under its restart policy
    /// stays `Exited`.)
    Stopped,
}

impl ServiceState {
    pub fn pid(&self) -> Option<u32> {
        match self {
            ServiceState::Running { pid }
            | ServiceState::Healthy { pid }
            | ServiceState::Unhealthy { pid } => Some(*pid),
            _ => None,
        }
    }

    /// Whether dependents may start: healthy, or running when there is no check.
    pub fn is_ready(&self, has_check: bool) -> bool {
        match self {
            ServiceState::Healthy { .. } => true,
            ServiceState::Running { .. } => !has_check,
            _ => false,
        }
    }
}

/// The health verdict, kept apart from the state so it survives into reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HealthState {
    /// No check configured.
    #[default]
    NoCheck,
    /// Checked, no verdict yet (or the process is not running).
    Unknown,
    Healthy,
    Unhealthy,
}

/// A service's observed status: what becomes its status resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceStatus {
    pub name: String,
    pub state: ServiceState,
    pub health: HealthState,
    /// Whether its health check is critical (gates the watchdog and probation).
    pub critical: bool,
    /// Starts after the first.
    pub restarts: u32,
    pub last_exit: Option<ExitReason>,
    /// The last failed probe's or spawn's message.
    pub last_error: Option<String>,
}

/// One state change, numbered: sequence numbers grow by one per event across the
/// whole supervisor, so a reader that lagged sees the gap.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceEvent {
    pub seq: u64,
    pub service: String,
    pub state: ServiceState,
    pub health: HealthState,
}
