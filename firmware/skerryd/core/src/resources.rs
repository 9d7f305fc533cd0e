//! The resource types more than one subsystem reads. Each subsystem's own types live in
//! its crate; these are where they meet:
//!
//! - the config in effect, one resource per document, written only by the config
//!   controller (namespace `config`): the other subsystems reconcile from these;
//! - each health check's last result (namespace `health`), written only by the health
//!   controller: probation, the watchdog gate and the API read it.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use skerry_config::kinds::{
    FleetConfig, MachineConfig, NetworkConfig, ServiceConfig, TimeConfig, UpdateConfig,
    WatchdogConfig,
};
use skerry_runtime::{ResourceSpec, Sensitivity};

/// The namespace of the config in effect.
pub const CONFIG_NAMESPACE: &str = "config";
/// The namespace of health results.
pub const HEALTH_NAMESPACE: &str = "health";
/// The id of a singleton document's resource (every kind but services).
pub const SINGLETON: &str = "active";

macro_rules! config_resource {
    ($(#[$doc:meta])* $name:ident($inner:ty), $type_name:literal, $sensitivity:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub $inner);

        impl ResourceSpec for $name {
            const TYPE: &'static str = $type_name;
            const NAMESPACE: &'static str = CONFIG_NAMESPACE;
            const SENSITIVITY: Sensitivity = $sensitivity;
        }
    };
}

config_resource!(
    /// The `MachineConfig` document in effect (id [`SINGLETON`]).
    ActiveMachine(MachineConfig), "MachineConfigs.config.skerry.dev", Sensitivity::Public
);
config_resource!(
    /// The `NetworkConfig` document in effect (id [`SINGLETON`]).
    ActiveNetwork(NetworkConfig), "NetworkConfigs.config.skerry.dev", Sensitivity::Public
);
config_resource!(
    /// The `TimeConfig` document in effect (id [`SINGLETON`]).
    ActiveTime(TimeConfig), "TimeConfigs.config.skerry.dev", Sensitivity::Public
);
config_resource!(
    /// One `ServiceConfig` document in effect (id: the service's name). Sensitive: a
    /// service's environment often carries credentials.
    ActiveService(ServiceConfig), "ServiceConfigs.config.skerry.dev", Sensitivity::Sensitive
);
config_resource!(
    /// The `WatchdogConfig` document in effect (id [`SINGLETON`]).
    ActiveWatchdog(WatchdogConfig), "WatchdogConfigs.config.skerry.dev", Sensitivity::Public
);
config_resource!(
    /// The `UpdateConfig` document in effect (id [`SINGLETON`]).
    ActiveUpdate(UpdateConfig), "UpdateConfigs.config.skerry.dev", Sensitivity::Public
);
config_resource!(
    /// The `FleetConfig` document in effect (id [`SINGLETON`]). Sensitive: it may carry
    /// the join token.
    ActiveFleet(FleetConfig), "FleetConfigs.config.skerry.dev", Sensitivity::Sensitive
);

/// A health check's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckState {
    /// Not run yet, or no result within its interval.
    Unknown,
    /// Passed its success threshold.
    Healthy,
    /// Failed its failure threshold.
    Unhealthy,
}

/// One health check's last result (namespace [`HEALTH_NAMESPACE`], id: the check's
/// name as the config gives it, `SERVICE/CHECK`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthCheckStatus {
    /// Gates probation and the watchdog.
    pub critical: bool,
    /// Where it stands.
    pub state: CheckState,
    /// Why the last run failed; empty when it passed.
    pub message: String,
    /// When it last ran.
    pub last_run: Option<SystemTime>,
    /// Runs failed in a row.
    pub consecutive_failures: u32,
    /// Since when it is in `state`.
    pub since: Option<SystemTime>,
}

impl ResourceSpec for HealthCheckStatus {
    const TYPE: &'static str = "HealthChecks.health.skerry.dev";
    const NAMESPACE: &'static str = HEALTH_NAMESPACE;
}
