//! `FleetConfig`: the fleet server this device checks in with, and what it tells it.
//!
//! The server only proposes: an offered release is taken through the upgrade subsystem
//! under the `UpdateConfig` in effect (the device still verifies the signed repository
//! itself), and only while `acceptOffers` is true — an operator on site pins the device
//! to what it runs by setting it to false; the device then keeps reporting.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::HumanDuration;

/// The fleet server and this device's place in the fleet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FleetConfig {
    /// The fleet server's gRPC endpoint (`http://` or `https://`, host and port).
    pub server: String,
    /// The channel reported to the server; when absent, the `UpdateConfig`'s channel
    /// (they must agree when both are given: offers are taken only within it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// Labels the server groups devices by (maintenance windows, waves).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// How often to check in; when absent, what the server's last answer asked for.
    /// Either way the device adds ±20 % jitter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub poll_interval: Option<HumanDuration>,
    /// The join URL that enrolls this device (docs/fleet-enrollment.md §1):
    /// `https://HOST:PORT/?token=ID.SECRET&ca=sha256:HEX`, as `skerry-server token
    /// create --url` prints it. With it, check-ins go over mutual TLS to its server, not
    /// to `server`; the kernel argument `skerry.join=` wins over it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub join: Option<String>,
    /// Whether the server's offers are taken (false: report only, the local pin).
    #[serde(default = "FleetConfig::default_accept_offers")]
    pub accept_offers: bool,
}

impl FleetConfig {
    fn default_accept_offers() -> bool {
        true
    }
}

/// Labels a FleetConfig may carry (the server takes at most as many).
pub const MAX_LABELS: usize = 32;
/// The longest label key or value.
pub const MAX_LABEL_TEXT: usize = 128;
/// The longest join URL (as skerryd's own parser).
pub const MAX_JOIN_URL: usize = 512;
/// The shortest configured poll interval.
pub const MIN_POLL_SECS: u64 = 5;
/// The longest configured poll interval.
pub const MAX_POLL_SECS: u64 = 86_400;
