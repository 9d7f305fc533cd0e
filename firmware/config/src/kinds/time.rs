//! `TimeConfig`: the SNTP client and the persisted time floor.
//!
//! A Raspberry Pi has no RTC and boots in 1970, which breaks certificate and TUF expiry; the
//! floor is a timestamp saved to `/var` and restored at boot before anything checks a date.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::HumanDuration;

/// Time keeping.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TimeConfig {
    /// The SNTP client.
    #[serde(default)]
    pub sntp: Sntp,
    /// The time floor.
    #[serde(default)]
    pub floor: TimeFloor,
}

/// SNTP client settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Sntp {
    /// Servers by host name or address, asked in order.
    #[serde(default)]
    pub servers: Vec<String>,
    /// How often to ask once synchronized.
    #[serde(default = "Sntp::default_poll")]
    pub poll_interval: HumanDuration,
}

impl Sntp {
    fn default_poll() -> HumanDuration {
        HumanDuration::secs(1024)
    }
}

impl Default for Sntp {
    fn default() -> Self {
        Sntp {
            servers: Vec::new(),
            poll_interval: Sntp::default_poll(),
        }
    }
}

/// Where the clock starts from at boot when it is behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum FloorSource {
    /// The later of the saved timestamp and the release's build time.
    #[default]
    Persisted,
    /// The release's build time only (nothing written to `/var`).
    BuildTime,
    /// No floor: the clock stays as the hardware left it.
    Off,
}

/// The time floor policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TimeFloor {
    /// Which floor to apply.
    #[serde(default)]
    pub source: FloorSource,
    /// How often the current time is saved (with `persisted`).
    #[serde(default = "TimeFloor::default_save")]
    pub save_interval: HumanDuration,
}

impl TimeFloor {
    fn default_save() -> HumanDuration {
        HumanDuration::secs(3600)
    }
}

impl Default for TimeFloor {
    fn default() -> Self {
        TimeFloor {
            source: FloorSource::default(),
            save_interval: TimeFloor::default_save(),
        }
    }
}
