//! The `watchdog` resource: whether the board's watchdog is armed and why it is not fed.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use skerry_runtime::ResourceSpec;

/// The subsystem's namespace.
pub const WATCHDOG_NAMESPACE: &str = "watchdog";
/// The status resource's id.
pub const STATUS_ID: &str = "board";

/// The watchdog's state (namespace [`WATCHDOG_NAMESPACE`], id [`STATUS_ID`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchdogStatus {
    /// Whether it counts down now.
    pub armed: bool,
    /// The board's device: `none`, `simulated:PATH`, `linux:PATH`.
    pub device: String,
    /// The timeout it counts, in milliseconds, while armed.
    pub timeout_ms: Option<u64>,
    /// When it was last fed.
    pub last_feed: Option<SystemTime>,
    /// Feeds since it was armed.
    pub feeds: u64,
    /// Why the last attempt did not feed; empty when it fed.
    pub withheld: Vec<String>,
    /// Why it could not be armed or fed, if so.
    pub error: Option<String>,
}

impl ResourceSpec for WatchdogStatus {
    const TYPE: &'static str = "WatchdogStatuses.watchdog.skerry.dev";
    const NAMESPACE: &'static str = WATCHDOG_NAMESPACE;
}
