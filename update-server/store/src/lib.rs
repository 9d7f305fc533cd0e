//! The update server's storage behind one trait, [`FleetStore`]: devices and their
//! check-ins, bounded per-device timelines, the releases each device rolled back from,
//! rollouts with their per-device outcomes, operator pins and maintenance windows.
//!
//! The embedded implementation is SQLite ([`SqliteStore`], one file, no set-up); the
//! PostgreSQL one ([`PgStore`]) serves several server instances on one database, under
//! the same conformance tests (`tests/`). [`LeaseStore`] lets one instance at a time do
//! a duty such as re-signing the timestamp.
//!
//! # Layout
//! - [`model`]: what goes in and out (check-ins, reports, timeline entries, devices).
//! - [`migrations`]: the schema as numbered migrations, applied at open.
//! - [`sqlite`]: the SQLite implementation (enrollment's in `sqlite_enrollment.rs`).
//! - [`enrollment`]: join tokens, device identities, device logs ([`EnrollmentStore`]).
//! - [`pg`]: the PostgreSQL implementation (its own migrations, a
//!   small connection pool, serializable transactions retried on conflict).
//! - [`lease`]: leases for duties one instance does at a time.
//! - [`error`](mod@error): the store's errors.

pub mod ddi;
pub mod enrollment;
pub mod error;
mod group_commit;
pub mod lease;
pub mod migrations;
pub mod model;
pub mod pg;
pub mod queries;
pub mod sqlite;
mod sqlite_cached;
mod sqlite_check_in;
mod sqlite_ddi;
mod sqlite_enrollment;
mod sqlite_queries;
mod sqlite_rollouts;

pub use ddi::{ActionState, DdiAction, DdiStore, DdiTarget, DDI_ATTRIBUTE_LIMIT};
pub use enrollment::{
    DeviceIdentity, EnrollRefusal, EnrollmentStore, IdentityRecord, JoinTokenInfo, LogEntry,
    LogKind, LogRefusal, LogSource, NewJoinToken, TokenRefusal, DEVICE_EVENT_LIMIT,
    DEVICE_LOG_LIMIT,
};
pub use error::StoreError;
pub use lease::{Lease, LeaseStore, TIMESTAMP_LEASE};
pub use model::{
    Admission, AdmissionRefusal, CheckIn, DeviceRecord, HealthReport, HealthState, RolloutAction,
    SlotReport, SlotStatus, StepKind, TimelineEntry, UpgradeReport, TIMELINE_LIMIT,
};
pub use pg::PgStore;
pub use queries::{DevicePage, DeviceSummary, FleetOverview, FleetQueries, DEVICE_PAGE_LIMIT};
pub use sqlite::SqliteStore;

use std::sync::Arc;

use skerry_rollout::{
    DeviceFacts, MaintenanceWindow, PauseReason, Pin, Rollout, UnixTime, WaveStats,
};

/// What the check-in stored: the device as the decision needs it, and the highest
/// report sequence now durable (the device may forget reports up to it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckInRecord {
    pub facts: DeviceFacts,
    pub acknowledged: u64,
    /// What the rollout decision reads, when the store read it with the check-in
    /// (the embedded store does, after the group's commit); else the caller reads it.
    pub inputs: Option<Arc<DecisionInputs>>,
}

/// The rollouts of a check-in's board and channel, with their stats, and the
/// maintenance windows: the stored half of the rollout decision's input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecisionInputs {
    pub rollouts: Vec<RolloutWithStats>,
    pub windows: Vec<MaintenanceWindow>,
}

/// A check-in being recorded, for async callers.
pub type CheckInFuture =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<CheckInRecord, StoreError>> + Send>>;

/// A rollout and its devices' outcomes per wave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolloutWithStats {
    pub rollout: Rollout,
    pub stats: Vec<WaveStats>,
}

/// The server's storage. Every method is one transaction.
pub trait FleetStore: Send + Sync + 'static {
    /// Records a check-in: creates or updates the device, applies the reports whose
    /// sequence is above the last acknowledged one (each exactly once), appends them to
    /// the timeline (trimmed to [`TIMELINE_LIMIT`]), remembers rollbacks for good.
    fn check_in(&self, check_in: &CheckIn, now: UnixTime) -> Result<CheckInRecord, StoreError>;
    /// [`FleetStore::check_in`] from async code. By default it runs on a blocking
    /// thread; the embedded store hands it to its writer thread instead.
    fn check_in_async(self: Arc<Self>, check_in: CheckIn, now: UnixTime) -> CheckInFuture
    where
        Self: Sized,
    {
        Box::pin(async move {
            tokio::task::spawn_blocking(move || self.check_in(&check_in, now))
                .await
                .map_err(|e| StoreError::Damaged {
                    what: "a check-in's blocking task".into(),
                    reason: e.to_string(),
                })?
        })
    }
    /// The rollouts of one board and channel, with their stats.
    fn rollouts_for(&self, board: &str, channel: &str)
        -> Result<Vec<RolloutWithStats>, StoreError>;
    /// Every rollout, with its stats.
    fn rollouts(&self) -> Result<Vec<RolloutWithStats>, StoreError>;
    /// Records that `device` was offered the rollout's release (first offer kept).
    fn record_offer(
        &self,
        rollout_id: &str,
        device: &str,
        wave: Option<usize>,
        now: UnixTime,
    ) -> Result<(), StoreError>;
    /// Pauses an active rollout with `reason` (a paused or aborted one is left as it is).
    fn pause_if_active(
        &self,
        rollout_id: &str,
        reason: &PauseReason,
        now: UnixTime,
    ) -> Result<(), StoreError>;
    /// Creates a rollout; its id and its release must both be new.
    fn create_rollout(&self, rollout: &Rollout) -> Result<(), StoreError>;
    /// An operator's pause, resume or abort.
    fn act_on_rollout(
        &self,
        rollout_id: &str,
        action: &RolloutAction,
        now: UnixTime,
    ) -> Result<(), StoreError>;
    /// Sets or clears the operator's pin of a known device.
    fn set_pin(&self, device: &str, pin: Option<&Pin>) -> Result<(), StoreError>;
    fn add_window(&self, window: &MaintenanceWindow) -> Result<(), StoreError>;
    fn windows(&self) -> Result<Vec<MaintenanceWindow>, StoreError>;
    fn device(&self, id: &str) -> Result<Option<DeviceRecord>, StoreError>;
    /// The device's timeline, oldest first.
    fn timeline(&self, id: &str) -> Result<Vec<TimelineEntry>, StoreError>;
}
