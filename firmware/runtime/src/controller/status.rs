//! What the runtime knows about each controller: reconcile counts, failures, the
//! last error and the last duration. Errors are also published into the state as a
//! [`ControllerStatusSpec`] resource (id = controller name), so the API can show them.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::resource::ResourceSpec;

/// Counters and last outcome of one controller.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ControllerStatus {
    /// Controller name.
    pub name: String,
    /// Reconciles run (successful or not).
    pub reconciles: u64,
    /// Reconciles that returned an error or panicked.
    pub failures: u64,
    /// Of those, panics.
    pub panics: u64,
    /// Failures since the last success (drives the backoff).
    pub consecutive_failures: u32,
    /// The last failure's message, cleared by a success.
    pub last_error: Option<String>,
    /// How long the last reconcile took.
    pub last_duration: Option<Duration>,
    /// The backoff the runner is waiting out before restarting, if any.
    pub backoff: Option<Duration>,
}

/// The status resource the runtime keeps per controller that has failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControllerStatusSpec {
    /// The last error, or `None` once it recovered.
    pub last_error: Option<String>,
    /// Failures since the last success.
    pub consecutive_failures: u32,
    /// Failures in total.
    pub failures: u64,
}

impl ResourceSpec for ControllerStatusSpec {
    const TYPE: &'static str = "ControllerStatuses.runtime.skerry.dev";
    const NAMESPACE: &'static str = "runtime";
}

/// Owner of the status resources.
pub(crate) const STATUS_OWNER: &str = "runtime";
