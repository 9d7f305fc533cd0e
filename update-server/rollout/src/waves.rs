//! A rollout's waves: percentages of the fleet that open over time.
//!
//! Each wave opens `after_secs` after the rollout started and admits every device whose
//! [`WaveSeed`] is below its percentage. Both offsets and percentages strictly increase,
//! so the admitted set only grows with time: waves are monotonic.

use crate::device::WaveSeed;
use crate::time::UnixTime;

/// Percentages are kept in basis points (1 % = 100) so a 0.5 % canary is exact.
pub const BASIS_POINTS: u16 = 10_000;

/// No schedule needs more waves than this.
pub const MAX_WAVES: usize = 32;

/// One wave: from `after_secs` after the start, devices whose seed is below
/// `basis_points` are in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wave {
    pub after_secs: u64,
    pub basis_points: u16,
}

/// A checked, non-empty list of waves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaveSchedule(Vec<Wave>);

/// Why a schedule was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WaveError {
    #[error("a rollout needs at least one wave")]
    Empty,
    #[error("{count} waves given; at most {MAX_WAVES} are allowed")]
    TooMany { count: usize },
    #[error("wave {index} covers {basis_points} basis points; at most {BASIS_POINTS} (100 %)")]
    OverFull { index: usize, basis_points: u16 },
    #[error("wave {index} must open later and cover more than wave {previous}")]
    NotIncreasing { index: usize, previous: usize },
}

impl WaveSchedule {
    /// Checks that offsets and percentages strictly increase and stay within 100 %.
    pub fn new(waves: Vec<Wave>) -> Result<Self, WaveError> {
        if waves.is_empty() {
            return Err(WaveError::Empty);
        }
        if waves.len() > MAX_WAVES {
            return Err(WaveError::TooMany { count: waves.len() });
        }
        for (index, wave) in waves.iter().enumerate() {
            if wave.basis_points > BASIS_POINTS {
                return Err(WaveError::OverFull {
                    index,
                    basis_points: wave.basis_points,
                });
            }
            if index > 0 {
                let prev = waves[index - 1];
                if wave.after_secs <= prev.after_secs || wave.basis_points <= prev.basis_points {
                    return Err(WaveError::NotIncreasing {
                        index,
                        previous: index - 1,
                    });
                }
            }
        }
        Ok(Self(waves))
    }

    /// Everyone at once.
    pub fn all_at_once() -> Self {
        Self(vec![Wave {
            after_secs: 0,
            basis_points: BASIS_POINTS,
        }])
    }

    pub fn waves(&self) -> &[Wave] {
        &self.0
    }

    /// The last wave opened by `now` for a rollout started at `started`, if any.
    pub fn current(&self, started: UnixTime, now: UnixTime) -> Option<usize> {
        if now < started {
            return None;
        }
        let elapsed = now.since(started);
        self.0.iter().rposition(|w| w.after_secs <= elapsed)
    }

    /// The wave a device with `seed` belongs to: the first whose percentage covers it;
    /// `None` if even the last wave leaves it out.
    pub fn wave_of(&self, seed: WaveSeed) -> Option<usize> {
        self.0
            .iter()
            .position(|w| seed.basis_points() < w.basis_points)
    }

    /// When wave `index` opens.
    pub fn opens_at(&self, started: UnixTime, index: usize) -> Option<UnixTime> {
        self.0.get(index).map(|w| started.plus(w.after_secs))
    }

    /// Whether a device with `seed` is admitted at `now`.
    pub fn admits(&self, seed: WaveSeed, started: UnixTime, now: UnixTime) -> bool {
        match (self.wave_of(seed), self.current(started, now)) {
            (Some(mine), Some(open)) => mine <= open,
            _ => false,
        }
    }
}
