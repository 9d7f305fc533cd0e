//! hawkBit DDI's storage, [`DdiStore`]: the targets (devices running SWUpdate's
//! suricatta, which cannot verify TUF) with the hash of their target token and the board,
//! channel and running version the rollout decision needs; the DDI actions (a numbered
//! offer of one rollout's release to one target) and the attributes a target sent as
//! configData. The device itself is an ordinary device record: its check-ins, reports
//! and timeline go through [`crate::FleetStore`] like any other device's.

use std::collections::BTreeMap;

use semver::Version;
use skerry_rollout::UnixTime;

use crate::StoreError;

/// Attributes kept per target (configData); the API edge refuses more.
pub const DDI_ATTRIBUTE_LIMIT: usize = 64;

/// A DDI target as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DdiTarget {
    pub device: String,
    pub board: String,
    pub channel: String,
    /// What it runs: set when added, moved on when it reports a deployment's success.
    pub version: Version,
}

/// Where a DDI action stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionState {
    /// Offered; the target has not finished it.
    Open,
    /// The target reported success.
    Succeeded,
    /// The target reported failure.
    Failed,
    /// The server asked the target to cancel it (the rollout was aborted).
    Canceling,
    /// The target confirmed the cancel.
    Canceled,
}

impl ActionState {
    pub fn name(self) -> &'static str {
        match self {
            ActionState::Open => "open",
            ActionState::Succeeded => "succeeded",
            ActionState::Failed => "failed",
            ActionState::Canceling => "canceling",
            ActionState::Canceled => "canceled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "open" => ActionState::Open,
            "succeeded" => ActionState::Succeeded,
            "failed" => ActionState::Failed,
            "canceling" => ActionState::Canceling,
            "canceled" => ActionState::Canceled,
            _ => return None,
        })
    }
}

/// One offer of a release to a target, numbered for the DDI URLs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DdiAction {
    pub id: u64,
    pub device: String,
    pub rollout_id: String,
    pub version: Version,
    pub state: ActionState,
    pub created_at: UnixTime,
}

/// The DDI half of the store. Every method is one transaction.
pub trait DdiStore: Send + Sync + 'static {
    /// Adds a target with its token's hash, or replaces the token, board and channel of
    /// a known one (its running version kept).
    fn put_ddi_target(
        &self,
        target: &DdiTarget,
        token_sha256: &[u8; 32],
        now: UnixTime,
    ) -> Result<(), StoreError>;
    /// The target whose token hashes to this, if any.
    fn ddi_target_by_token(&self, token_sha256: &[u8; 32])
        -> Result<Option<DdiTarget>, StoreError>;
    fn ddi_target(&self, device: &str) -> Result<Option<DdiTarget>, StoreError>;
    /// Moves a target's board or channel (from its configData) and running version.
    fn update_ddi_target(&self, target: &DdiTarget) -> Result<(), StoreError>;
    /// The target's open (or canceling) action for this rollout's release, created if
    /// there is none; a finished one is never reopened (a new one is made).
    fn ddi_open_action(
        &self,
        device: &str,
        rollout_id: &str,
        version: &Version,
        now: UnixTime,
    ) -> Result<DdiAction, StoreError>;
    /// The target's newest action that is not finished, if any.
    fn ddi_pending_action(&self, device: &str) -> Result<Option<DdiAction>, StoreError>;
    fn ddi_action(&self, device: &str, id: u64) -> Result<Option<DdiAction>, StoreError>;
    /// Sets an action's state.
    fn set_ddi_action_state(
        &self,
        device: &str,
        id: u64,
        state: ActionState,
    ) -> Result<(), StoreError>;
    /// Replaces the target's attributes.
    fn set_ddi_attributes(
        &self,
        device: &str,
        attributes: &BTreeMap<String, String>,
    ) -> Result<(), StoreError>;
    /// The target's attributes; empty until it sent configData.
    fn ddi_attributes(&self, device: &str) -> Result<Option<BTreeMap<String, String>>, StoreError>;
}
