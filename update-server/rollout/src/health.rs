//! The health gate: a rollout pauses itself when the share of devices of an opened wave
//! that failed or rolled back crosses its threshold.

/// What the devices of one wave reported so far (each device counted once, by its
/// latest outcome for this rollout).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WaveStats {
    /// Devices that reported any step of this release (downloading or later).
    pub started: u32,
    pub committed: u32,
    pub failed: u32,
    pub rolled_back: u32,
}

impl WaveStats {
    /// Devices whose upgrade went wrong.
    pub fn bad(&self) -> u32 {
        self.failed.saturating_add(self.rolled_back)
    }
}

/// When a rollout pauses itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthGate {
    /// Pause when failed + rolled back exceed this many per mille of the wave's started
    /// devices. 0 pauses on the first bad report.
    pub max_bad_permille: u16,
    /// The rate is taken over at least this many devices, so one early failure in a
    /// large wave does not count as 100 %.
    pub min_sample: u32,
}

impl Default for HealthGate {
    fn default() -> Self {
        Self {
            max_bad_permille: 200,
            min_sample: 1,
        }
    }
}

/// A wave whose bad share crossed the gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Breach {
    pub wave: usize,
    pub stats: WaveStats,
}

impl HealthGate {
    /// The first of the waves opened so far (`0..=current`) whose bad share crosses the
    /// gate. Earlier waves are checked too: their devices may still be reporting.
    pub fn breach(&self, stats: &[WaveStats], current: usize) -> Option<Breach> {
        stats
            .iter()
            .enumerate()
            .take(current.saturating_add(1))
            .find(|(_, s)| self.crossed(s))
            .map(|(wave, s)| Breach { wave, stats: *s })
    }

    /// `bad / max(started, min_sample) > max_bad_permille / 1000`, in integers.
    pub fn crossed(&self, s: &WaveStats) -> bool {
        let bad = u64::from(s.bad());
        let over = u64::from(s.started.max(self.min_sample).max(1));
        bad > 0 && bad * 1000 > u64::from(self.max_bad_permille) * over
    }
}
