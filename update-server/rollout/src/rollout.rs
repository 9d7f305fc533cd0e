//! A rollout: one release offered to a channel in waves, with a health gate and a state.

use semver::Version;

use crate::health::HealthGate;
use crate::time::UnixTime;
use crate::waves::WaveSchedule;

/// A release as the repository's signed targets name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    pub board: String,
    pub version: Version,
    pub channel: String,
}

/// Why a rollout stopped offering its release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PauseReason {
    /// An operator paused it.
    Operator { note: String },
    /// Too many devices of a wave failed or rolled back.
    Health {
        wave: usize,
        started: u32,
        bad: u32,
        max_bad_permille: u16,
    },
}

impl std::fmt::Display for PauseReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PauseReason::Operator { note } if note.is_empty() => write!(f, "paused by an operator"),
            PauseReason::Operator { note } => write!(f, "paused by an operator: {note}"),
            PauseReason::Health {
                wave,
                started,
                bad,
                max_bad_permille,
            } => write!(
                f,
                "paused automatically: {bad} of {started} devices in wave {} failed or rolled back \
                 (threshold {}.{} %)",
                wave + 1,
                max_bad_permille / 10,
                max_bad_permille % 10
            ),
        }
    }
}

/// Where a rollout stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RolloutState {
    Active,
    Paused {
        since: UnixTime,
        reason: PauseReason,
    },
    /// Stopped for good; nothing more is offered.
    Aborted,
}

/// One release rolled out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rollout {
    pub id: String,
    pub release: Release,
    /// When wave offsets count from. Resuming a paused rollout moves it on by the time
    /// it was paused, so a pause never lets later waves open all at once.
    pub started_at: UnixTime,
    pub waves: WaveSchedule,
    pub gate: HealthGate,
    pub state: RolloutState,
    /// Offer also to devices that rolled back from this release.
    pub force: bool,
}

impl Rollout {
    /// The state and start after an operator resumes at `now`; `None` if it is not paused.
    pub fn resumed(&self, now: UnixTime) -> Option<(RolloutState, UnixTime)> {
        match &self.state {
            RolloutState::Paused { since, .. } => Some((
                RolloutState::Active,
                self.started_at.plus(now.since(*since)),
            )),
            _ => None,
        }
    }
}
