//! What the store takes and gives: check-ins, upgrade reports, timeline entries.
//! Values arrive here already bounded and checked by the API edge.

use std::collections::BTreeMap;

use semver::Version;
use skerry_rollout::{Pin, UnixTime};

/// Entries kept per device; older ones are dropped (rollbacks are kept apart, for good).
pub const TIMELINE_LIMIT: usize = 256;

/// One upgrade step a device reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepKind {
    Downloading,
    Installed,
    Rebooting,
    Probation,
    Committed,
    RolledBack,
    Failed,
}

impl StepKind {
    pub fn name(self) -> &'static str {
        match self {
            StepKind::Downloading => "downloading",
            StepKind::Installed => "installed",
            StepKind::Rebooting => "rebooting",
            StepKind::Probation => "probation",
            StepKind::Committed => "committed",
            StepKind::RolledBack => "rolled_back",
            StepKind::Failed => "failed",
        }
    }

    /// The outcome a rollout counts for a device whose latest step is this.
    pub(crate) fn outcome(self) -> &'static str {
        match self {
            StepKind::Committed => "committed",
            StepKind::RolledBack => "rolled_back",
            StepKind::Failed => "failed",
            _ => "started",
        }
    }
}

/// A report of one step, numbered by the device so a resent report counts once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpgradeReport {
    pub sequence: u64,
    pub target: Version,
    pub step: StepKind,
    pub reason: String,
    pub at: UnixTime,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotStatus {
    Good,
    Trying,
    Bad,
    Empty,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotReport {
    pub name: String,
    pub version: Option<Version>,
    pub status: SlotStatus,
    pub booted: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthState {
    Healthy,
    Degraded,
    Unhealthy,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthReport {
    pub state: HealthState,
    pub failing: Vec<String>,
}

/// One check-in as the API edge checked it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckIn {
    pub device: String,
    pub board: String,
    pub version: Version,
    pub channel: String,
    pub labels: BTreeMap<String, String>,
    pub slots: Vec<SlotReport>,
    pub health: HealthReport,
    pub reports: Vec<UpgradeReport>,
    /// Who the device must be for the check-in to be taken; checked in the check-in's
    /// own transaction, so a revocation committed before it is never missed.
    pub admission: Admission,
}

/// What a check-in's device must be, by the way it arrived. No default: whoever builds
/// a check-in says who may send it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// Anyone: the caller already knows the device (a DDI token, an allowed plaintext
    /// device, a test).
    Open,
    /// A device without an identity: an enrolled one must use its certificate.
    NotEnrolled,
    /// The device whose current, unrevoked certificate has this serial.
    Certificate { serial: String },
}

/// Why a check-in's device was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdmissionRefusal {
    /// It has an identity, and came without its certificate.
    Enrolled,
    /// Its certificate was not issued here (no identity is stored).
    NotIssued,
    /// It is revoked.
    Revoked,
    /// Its certificate is not the current one (a newer enrollment replaced it).
    Superseded,
}

impl Admission {
    /// [`Admission::admits`] as the store answers a check-in of `device`: refused, it
    /// is [`StoreError::NotAdmitted`](crate::StoreError::NotAdmitted).
    pub(crate) fn check(
        &self,
        device: &str,
        identity: Option<&crate::IdentityRecord>,
    ) -> Result<(), crate::StoreError> {
        self.admits(identity)
            .map_err(|refusal| crate::StoreError::NotAdmitted {
                device: device.to_owned(),
                refusal,
            })
    }

    /// Whether a device with the stored `identity` is admitted.
    pub fn admits(&self, identity: Option<&crate::IdentityRecord>) -> Result<(), AdmissionRefusal> {
        match (self, identity) {
            (Admission::Open, _) | (Admission::NotEnrolled, None) => Ok(()),
            (Admission::NotEnrolled, Some(_)) => Err(AdmissionRefusal::Enrolled),
            (Admission::Certificate { .. }, None) => Err(AdmissionRefusal::NotIssued),
            (Admission::Certificate { .. }, Some(i)) if i.revoked_at.is_some() => {
                Err(AdmissionRefusal::Revoked)
            }
            (Admission::Certificate { serial }, Some(i)) if i.identity.serial != *serial => {
                Err(AdmissionRefusal::Superseded)
            }
            (Admission::Certificate { .. }, Some(_)) => Ok(()),
        }
    }
}

/// A device as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRecord {
    pub id: String,
    pub board: String,
    pub version: Version,
    pub channel: String,
    pub labels: BTreeMap<String, String>,
    pub health: String,
    pub first_seen: UnixTime,
    pub last_seen: UnixTime,
    pub pin: Option<Pin>,
    pub acknowledged: u64,
}

/// One line of a device's timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimelineEntry {
    pub seq: u64,
    pub at: UnixTime,
    /// `checked-in`, `offered`, or a step's name.
    pub kind: String,
    pub version: String,
    pub detail: String,
}

/// What an operator does to a rollout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RolloutAction {
    Pause { note: String },
    Resume,
    Abort,
}
