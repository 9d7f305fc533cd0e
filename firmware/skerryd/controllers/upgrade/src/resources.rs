//! The upgrade subsystem's resources (namespace `upgrade`): where the upgrade stands,
//! and a read-only mirror of the persisted history.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use skerry_runtime::ResourceSpec;

use crate::history::Entry;

/// The namespace of the upgrade subsystem's resources.
pub const UPGRADE_NAMESPACE: &str = "upgrade";
/// The id of the [`UpgradeStatus`] singleton.
pub const STATUS_ID: &str = "status";

/// Where the upgrade stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UpgradePhaseName {
    /// Nothing in flight.
    Idle,
    /// Fetching and verifying the signed metadata.
    RefreshingMetadata,
    /// Reading the seed and fetching what it lacks.
    Downloading,
    /// Writing the inactive slot.
    Writing,
    /// Checking what was written.
    Verifying,
    /// The trial has begun; the machine reboots into it.
    TrialReady,
    /// The booted slot is on trial; its critical checks decide.
    Probation,
    /// The trial passed and was marked good.
    Committed,
    /// The booted slot was marked bad; the machine reboots into the known-good slot.
    RollingBack,
    /// The last upgrade failed (see the message); the machine stays as it was.
    Failed,
}

/// The upgrade subsystem's state (id [`STATUS_ID`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpgradeStatus {
    /// Where it stands.
    pub phase: UpgradePhaseName,
    /// Bytes done in this phase.
    pub done_bytes: u64,
    /// Bytes expected in this phase (0: not known).
    pub total_bytes: u64,
    /// The release installed, on trial or just decided.
    pub release: String,
    /// The slot written or on trial.
    pub target_slot: String,
    /// The slot this start booted.
    pub booted_slot: String,
    /// During probation: when it fails if the critical checks have not held.
    pub probation_deadline: Option<SystemTime>,
    /// For people.
    pub message: String,
}

impl UpgradeStatus {
    /// Nothing in flight on `booted`.
    pub fn idle(booted: &str) -> Self {
        UpgradeStatus {
            phase: UpgradePhaseName::Idle,
            done_bytes: 0,
            total_bytes: 0,
            release: String::new(),
            target_slot: String::new(),
            booted_slot: booted.to_owned(),
            probation_deadline: None,
            message: String::new(),
        }
    }
}

impl ResourceSpec for UpgradeStatus {
    const TYPE: &'static str = "UpgradeStatuses.upgrade.skerry.dev";
    const NAMESPACE: &'static str = UPGRADE_NAMESPACE;
}

/// One step of the persisted upgrade history (id: its sequence number, zero-padded so
/// ids sort in order). A mirror: the file in `var/skerry/upgrade` is the truth.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UpgradeHistoryEntry(pub Entry);

impl ResourceSpec for UpgradeHistoryEntry {
    const TYPE: &'static str = "UpgradeHistory.upgrade.skerry.dev";
    const NAMESPACE: &'static str = UPGRADE_NAMESPACE;
}

/// The id of the history resource for sequence number `seq`.
pub fn entry_id(seq: u64) -> String {
    format!("{seq:08}")
}
