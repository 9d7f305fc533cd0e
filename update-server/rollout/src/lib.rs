//! The update server's rollout policy as a pure function of (device, rollouts, reports so
//! far, time) → offer a release or hold. Nothing here reads a clock, a database or the
//! network, so every rule is tested on its own (unit and property tests in `tests/`).
//!
//! # Layout
//! - [`time`]: seconds since the Unix epoch, the only clock the policy knows.
//! - [`device`]: what the server knows of a device (board, channel, labels, version,
//!   the operator's pin, the releases it rolled back from) and its stable wave seed.
//! - [`waves`]: a rollout's schedule of percentages over time, and which wave a seed is in.
//! - [`window`]: maintenance windows per label group (UTC).
//! - [`health`]: per-wave report counts and the automatic pause when the failure or
//!   rollback rate crosses the rollout's threshold.
//! - [`rollout`]: a rollout of one release (state: active, paused with a reason, aborted).
//! - [`decide`](mod@decide): the decision itself.

pub mod decide;
pub mod device;
pub mod health;
pub mod rollout;
pub mod time;
pub mod waves;
pub mod window;

pub use decide::{decide, Candidate, Decision, Fleet, Hold, Offer, Verdict};
pub use device::{DeviceFacts, Pin, WaveSeed};
pub use health::{HealthGate, WaveStats};
pub use rollout::{PauseReason, Release, Rollout, RolloutState};
pub use time::UnixTime;
pub use waves::{Wave, WaveError, WaveSchedule, BASIS_POINTS};
pub use window::{LabelSelector, MaintenanceWindow, Weekdays, WindowError};
