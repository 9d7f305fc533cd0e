//! `ServiceConfig`: one supervised process per document (a named kind).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::HumanDuration;

/// A process the supervisor runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServiceConfig {
    /// The service's name, unique among services.
    pub name: String,
    /// The program and its arguments.
    pub command: Vec<String>,
    /// Environment variables.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Services that must be running (and healthy, if they have checks) first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<String>,
    /// What to do when the process exits.
    #[serde(default)]
    pub restart: Restart,
    /// Health checks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub health_checks: Vec<HealthCheck>,
}

/// When the supervisor restarts the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum RestartPolicy {
    /// Whatever the exit status.
    #[default]
    Always,
    /// Only after a non-zero exit or a signal.
    OnFailure,
    /// Never.
    Never,
}

/// Restart policy with exponential backoff.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Restart {
    /// When to restart.
    #[serde(default)]
    pub policy: RestartPolicy,
    /// The first delay; it doubles on each failed run.
    #[serde(default = "Restart::default_initial")]
    pub initial_backoff: HumanDuration,
    /// The longest delay.
    #[serde(default = "Restart::default_max")]
    pub max_backoff: HumanDuration,
}

impl Restart {
    fn default_initial() -> HumanDuration {
        HumanDuration::secs(1)
    }
    fn default_max() -> HumanDuration {
        HumanDuration::secs(60)
    }
}

impl Default for Restart {
    fn default() -> Self {
        Restart {
            policy: RestartPolicy::default(),
            initial_backoff: Restart::default_initial(),
            max_backoff: Restart::default_max(),
        }
    }
}

/// A health check of a service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HealthCheck {
    /// The check's name, unique within its service (referenced as `service/check`).
    pub name: String,
    /// How the check probes.
    pub probe: Probe,
    /// Time between probes.
    #[serde(default = "HealthCheck::default_interval")]
    pub interval: HumanDuration,
    /// How long one probe may take.
    #[serde(default = "HealthCheck::default_timeout")]
    pub timeout: HumanDuration,
    /// Consecutive passes before the check is healthy.
    #[serde(default = "HealthCheck::one")]
    pub success_threshold: u32,
    /// Consecutive failures before the check is unhealthy.
    #[serde(default = "HealthCheck::three")]
    pub failure_threshold: u32,
    /// A critical check gates probation and (when listed) the watchdog.
    #[serde(default)]
    pub critical: bool,
}

impl HealthCheck {
    fn default_interval() -> HumanDuration {
        HumanDuration::secs(10)
    }
    fn default_timeout() -> HumanDuration {
        HumanDuration::secs(2)
    }
    fn one() -> u32 {
        1
    }
    fn three() -> u32 {
        3
    }
}

/// A probe: exactly one of `exec`, `tcp` or `http`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum Probe {
    /// Run a command; exit status 0 passes.
    Exec {
        /// The program and its arguments.
        command: Vec<String>,
    },
    /// Connect to `host:port`; an accepted connection passes.
    Tcp {
        /// `host:port`.
        address: String,
    },
    /// GET a URL; the expected status passes.
    Http {
        /// An `http://` URL.
        url: String,
        /// The status that passes.
        #[serde(default = "Probe::ok", rename = "expectStatus")]
        expect_status: u16,
    },
}

impl Probe {
    fn ok() -> u16 {
        200
    }
}
