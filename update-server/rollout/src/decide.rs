//! The decision: given a device, the fleet's releases and windows, the rollouts with
//! their reports so far, and the time, offer one release or hold (with the reason).
//!
//! Rules, in order:
//! 1. an operator's pin wins: the pinned release is offered (inside the device's
//!    maintenance windows) and nothing else is;
//! 2. only rollouts of the device's board *and its own channel*, of releases newer than
//!    the one it runs, are considered, newest first; the first that offers wins;
//! 3. per rollout: aborted or paused rollouts offer nothing; one whose opened waves
//!    crossed its health gate pauses now (the caller records [`Verdict::pause`]); a
//!    release the device rolled back from is never offered unless the rollout is
//!    forced; the device's wave must be open; it must be inside its maintenance window.

use semver::Version;

use crate::device::DeviceFacts;
use crate::health::WaveStats;
use crate::rollout::{PauseReason, Release, Rollout, RolloutState};
use crate::time::UnixTime;
use crate::window::{allows, MaintenanceWindow};

/// Fleet-wide inputs: the releases the repository holds and the maintenance windows.
#[derive(Debug, Clone, Copy)]
pub struct Fleet<'a> {
    pub releases: &'a [Release],
    pub windows: &'a [MaintenanceWindow],
}

/// A rollout and its devices' reports per wave (index = wave).
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    pub rollout: &'a Rollout,
    pub stats: &'a [WaveStats],
}

/// What to tell the device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    pub release: Release,
    /// The rollout that offers it; `None` for a pin.
    pub rollout_id: Option<String>,
    /// The device's wave in that rollout.
    pub wave: Option<usize>,
    /// Offered although the device rolled back from it (forced rollout or pin).
    pub forced: bool,
}

/// Why nothing is offered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hold {
    /// No rollout for this board in this channel has a release newer than the device's.
    UpToDate,
    /// The device runs its pinned release.
    Pinned {
        version: Version,
    },
    /// The pinned release is not in the repository for this board and channel.
    PinUnavailable {
        version: Version,
    },
    Paused {
        rollout_id: String,
        reason: PauseReason,
    },
    Aborted {
        rollout_id: String,
    },
    RolledBack {
        rollout_id: Option<String>,
        version: Version,
    },
    /// The device's wave opens later (`None`: no wave of this rollout includes it).
    WaveNotOpen {
        rollout_id: String,
        wave: Option<usize>,
        opens_at: Option<UnixTime>,
    },
    OutsideWindow {
        rollout_id: Option<String>,
    },
}

/// The decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Offer(Offer),
    Hold(Hold),
}

/// The decision and any automatic pause the caller must record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub decision: Decision,
    /// A rollout whose health gate was crossed: record it as paused with this reason.
    pub pause: Option<(String, PauseReason)>,
}

/// Decides what `device` is offered at `now`.
pub fn decide(
    fleet: Fleet<'_>,
    device: &DeviceFacts,
    rollouts: &[Candidate<'_>],
    now: UnixTime,
) -> Verdict {
    if let Some(pin) = &device.pin {
        return Verdict {
            decision: Decision::Hold(Hold::Pinned {
                version: pin.version.clone(),
            }),
            pause: None,
        }
        .or_pinned_offer(fleet, device, now);
    }

    let mut mine: Vec<&Candidate<'_>> = rollouts
        .iter()
        .filter(|c| {
            let r = &c.rollout.release;
            r.board == device.board && r.channel == device.channel && r.version > device.version
        })
        .collect();
    mine.sort_by(|a, b| b.rollout.release.version.cmp(&a.rollout.release.version));

    let mut first_hold = None;
    let mut pause = None;
    for candidate in mine {
        match consider(fleet, device, candidate, now) {
            Consideration::Offer(offer) => {
                return Verdict {
                    decision: Decision::Offer(offer),
                    pause,
                }
            }
            Consideration::Hold(hold, new_pause) => {
                if pause.is_none() {
                    pause = new_pause;
                }
                first_hold.get_or_insert(hold);
            }
        }
    }
    Verdict {
        decision: Decision::Hold(first_hold.unwrap_or(Hold::UpToDate)),
        pause,
    }
}

enum Consideration {
    Offer(Offer),
    Hold(Hold, Option<(String, PauseReason)>),
}

fn consider(
    fleet: Fleet<'_>,
    device: &DeviceFacts,
    c: &Candidate<'_>,
    now: UnixTime,
) -> Consideration {
    let r = c.rollout;
    let id = r.id.clone();
    let hold = |h| Consideration::Hold(h, None);
    match &r.state {
        RolloutState::Aborted => return hold(Hold::Aborted { rollout_id: id }),
        RolloutState::Paused { reason, .. } => {
            return hold(Hold::Paused {
                rollout_id: id,
                reason: reason.clone(),
            })
        }
        RolloutState::Active => {}
    }
    if let Some(current) = r.waves.current(r.started_at, now) {
        if let Some(breach) = r.gate.breach(c.stats, current) {
            let reason = PauseReason::Health {
                wave: breach.wave,
                started: breach.stats.started,
                bad: breach.stats.bad(),
                max_bad_permille: r.gate.max_bad_permille,
            };
            return Consideration::Hold(
                Hold::Paused {
                    rollout_id: id.clone(),
                    reason: reason.clone(),
                },
                Some((id, reason)),
            );
        }
    }
    let rolled_back = device.rolled_back_from.contains(&r.release.version);
    if rolled_back && !r.force {
        return hold(Hold::RolledBack {
            rollout_id: Some(id),
            version: r.release.version.clone(),
        });
    }
    let wave = r.waves.wave_of(device.seed);
    if !r.waves.admits(device.seed, r.started_at, now) {
        return hold(Hold::WaveNotOpen {
            rollout_id: id,
            wave,
            opens_at: wave.and_then(|w| r.waves.opens_at(r.started_at, w)),
        });
    }
    if !allows(fleet.windows, &device.labels, now) {
        return hold(Hold::OutsideWindow {
            rollout_id: Some(id),
        });
    }
    Consideration::Offer(Offer {
        release: r.release.clone(),
        rollout_id: Some(id),
        wave,
        forced: rolled_back,
    })
}

impl Verdict {
    fn or_pinned_offer(self, fleet: Fleet<'_>, device: &DeviceFacts, now: UnixTime) -> Verdict {
        let Some(pin) = &device.pin else { return self };
        let hold = |h| Verdict {
            decision: Decision::Hold(h),
            pause: None,
        };
        if pin.version == device.version {
            return self;
        }
        let Some(release) = fleet.releases.iter().find(|r| {
            r.board == device.board && r.channel == device.channel && r.version == pin.version
        }) else {
            return hold(Hold::PinUnavailable {
                version: pin.version.clone(),
            });
        };
        let rolled_back = device.rolled_back_from.contains(&pin.version);
        if rolled_back && !pin.force {
            return hold(Hold::RolledBack {
                rollout_id: None,
                version: pin.version.clone(),
            });
        }
        if !allows(fleet.windows, &device.labels, now) {
            return hold(Hold::OutsideWindow { rollout_id: None });
        }
        Verdict {
            decision: Decision::Offer(Offer {
                release: release.clone(),
                rollout_id: None,
                wave: None,
                forced: rolled_back,
            }),
            pause: None,
        }
    }
}
