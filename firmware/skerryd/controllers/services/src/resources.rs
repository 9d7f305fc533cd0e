//! This subsystem's own resource type: each service's observed status (namespace
//! [`SERVICES_NAMESPACE`], id: the service's name). Health results are the shared
//! [`skerryd_core::resources::HealthCheckStatus`].

use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use skerry_runtime::ResourceSpec;

/// The namespace of service statuses.
pub const SERVICES_NAMESPACE: &str = "services";

/// Where a service's process stands, as the API names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    /// Its dependencies are not ready yet.
    Waiting,
    /// Being spawned.
    Starting,
    /// Its process runs.
    Running,
    /// Stopped (by the operator, or it exited cleanly for good).
    Stopped,
    /// It exited with a failure or could not be started.
    Failed,
    /// Waiting out the restart backoff.
    Backoff,
}

impl RunState {
    /// The name used in events and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Waiting => "waiting",
            RunState::Starting => "starting",
            RunState::Running => "running",
            RunState::Stopped => "stopped",
            RunState::Failed => "failed",
            RunState::Backoff => "backoff",
        }
    }
}

/// A service's health: the worst of its checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServiceHealth {
    /// It has no health check.
    NoCheck,
    /// Some check has no verdict yet.
    Unknown,
    /// Every check is healthy.
    Healthy,
    /// Some check is unhealthy.
    Unhealthy,
}

/// One service as the supervisor last reported it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceStatus {
    /// Where its process stands.
    pub state: RunState,
    /// The running process's id.
    pub pid: Option<u32>,
    /// Starts after the first.
    pub restarts: u32,
    /// Since when it is in `state`.
    pub since: SystemTime,
    /// What happened last, for people ("exited with code 3", "program x not found").
    pub message: String,
    /// The worst of its health checks.
    pub health: ServiceHealth,
    /// How its last process ended ("code 0", "signal 9").
    pub exit: Option<String>,
    /// Stopped by the operator: it stays stopped until started through the API.
    pub held: bool,
}

impl ResourceSpec for ServiceStatus {
    const TYPE: &'static str = "Services.services.skerry.dev";
    const NAMESPACE: &'static str = SERVICES_NAMESPACE;
}
