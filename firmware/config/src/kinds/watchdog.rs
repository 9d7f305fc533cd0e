//! `WatchdogConfig`: the hardware watchdog and the checks that gate its feeding.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::HumanDuration;

/// The watchdog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WatchdogConfig {
    /// The device: a Linux watchdog node or an external IC on a GPIO line.
    pub device: WatchdogDevice,
    /// The timeout after which an unfed watchdog resets the machine.
    pub timeout: HumanDuration,
    /// Health checks (`service/check`) that must pass for the watchdog to be fed,
    /// on top of the daemon's own controller and state-write deadlines.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gate: Vec<String>,
}

/// Which watchdog hardware.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum WatchdogDevice {
    /// A Linux watchdog character device such as `/dev/watchdog0`.
    Linux {
        /// The device path.
        path: String,
    },
    /// An external watchdog IC toggled through a GPIO line.
    Gpio {
        /// The GPIO character device, e.g. `/dev/gpiochip0`.
        chip: String,
        /// The line offset.
        line: u32,
    },
}
