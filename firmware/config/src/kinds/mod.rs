//! The document kinds of the machine config, one module each.

pub mod common;
pub mod fleet;
pub mod machine;
pub mod network;
pub mod service;
pub mod time;
pub mod update;
pub mod watchdog;

pub use common::{Cidr, HumanDuration};
pub use fleet::FleetConfig;
pub use machine::{Identity, MachineConfig};
pub use network::{Dns, Link, NetworkConfig, Route};
pub use service::{HealthCheck, Probe, Restart, RestartPolicy, ServiceConfig};
pub use time::{FloorSource, Sntp, TimeConfig, TimeFloor};
pub use update::UpdateConfig;
pub use watchdog::{WatchdogConfig, WatchdogDevice};
