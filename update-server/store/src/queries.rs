//! Read-only questions the operator API asks of a fleet store: one page of devices and
//! the fleet's overview counts. A separate trait from [`FleetStore`](crate::FleetStore)
//! so the check-in path stays small; every store implements both.

use skerry_rollout::UnixTime;

use crate::StoreError;

/// The most devices one page may hold, whatever the caller asks for.
pub const DEVICE_PAGE_LIMIT: usize = 500;

/// A device as a list shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceSummary {
    pub id: String,
    pub board: String,
    pub version: String,
    pub channel: String,
    /// `healthy`, `degraded: …` or `unhealthy: …`, as the device last said.
    pub health: String,
    pub last_seen: UnixTime,
    /// The pinned version, if an operator pinned one.
    pub pin: Option<String>,
}

/// Devices ordered by id, after a cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevicePage {
    pub devices: Vec<DeviceSummary>,
    /// The id to ask `after` for the next page; `None` on the last page.
    pub next_after: Option<String>,
}

/// How many devices run each version and are in each health state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FleetOverview {
    pub devices: u64,
    /// (version, devices), highest count first.
    pub versions: Vec<(String, u64)>,
    /// (`healthy` | `degraded` | `unhealthy`, devices), by name.
    pub health: Vec<(String, u64)>,
}

/// The operator's read queries.
pub trait FleetQueries: Send + Sync + 'static {
    /// Up to `limit` (capped at [`DEVICE_PAGE_LIMIT`], at least 1) devices whose id sorts
    /// after `after`, by id.
    fn device_page(&self, after: Option<&str>, limit: usize) -> Result<DevicePage, StoreError>;
    fn overview(&self) -> Result<FleetOverview, StoreError>;
}

/// The health state word of a stored health text (`degraded: disk` → `degraded`).
pub fn health_state(text: &str) -> &str {
    text.split(':').next().unwrap_or(text).trim()
}
