//! When to check in next: the interval (configured, else the server's last answer),
//! jittered ±20 % so a fleet that rebooted together does not check in together, and
//! while the server is unreachable an exponential backoff capped at [`MAX_BACKOFF`].
//!
//! Pure: the random source is a small PRNG seeded from the device id and, in the
//! daemon, the OS's randomness; a test passes its own seed.

use std::time::Duration;

use sha2::{Digest, Sha256};

/// The interval until the server first answers (and when it asks for none).
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(300);
/// The shortest interval taken from a server's answer (a hostile 0 s is not a loop).
pub const MIN_INTERVAL: Duration = Duration::from_secs(5);
/// The longest interval taken from a server's answer.
pub const MAX_INTERVAL: Duration = Duration::from_secs(86_400);
/// The first retry after a failed check-in.
pub const FIRST_BACKOFF: Duration = Duration::from_secs(5);
/// The longest wait between retries while the server is unreachable.
pub const MAX_BACKOFF: Duration = Duration::from_secs(900);
/// Jitter, in per mille either side of the interval.
pub const JITTER_PERMILLE: u64 = 200;

/// The check-in schedule of one device.
#[derive(Debug, Clone)]
pub struct Schedule {
    rng: u64,
    interval: Duration,
    failures: u32,
}

impl Schedule {
    /// A schedule for `device_id`, its randomness mixed from the id and `entropy`.
    pub fn new(device_id: &str, entropy: u64) -> Self {
        let digest = Sha256::digest(format!("skerry fleet jitter v1\0{device_id}").as_bytes());
        let mut seed = [0u8; 8];
        seed.copy_from_slice(&digest[..8]);
        Schedule {
            rng: u64::from_le_bytes(seed) ^ entropy,
            interval: DEFAULT_INTERVAL,
            failures: 0,
        }
    }

    /// The interval in force (before jitter).
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Check-ins failed in a row.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// The server answered and asked for `asked` (configured wins when set). Returns
    /// the jittered delay until the next check-in.
    pub fn answered(&mut self, asked: Option<Duration>, configured: Option<Duration>) -> Duration {
        self.failures = 0;
        self.interval = match (configured, asked) {
            (Some(c), _) => c,
            (None, Some(a)) => a.clamp(MIN_INTERVAL, MAX_INTERVAL),
            (None, None) => self.interval,
        };
        self.jittered(self.interval)
    }

    /// The check-in failed. Returns the jittered delay until the retry: doubling from
    /// [`FIRST_BACKOFF`], never more than [`MAX_BACKOFF`] nor the interval itself.
    pub fn failed(&mut self) -> Duration {
        self.failures = self.failures.saturating_add(1);
        let doublings = self.failures.saturating_sub(1).min(20);
        let backoff = FIRST_BACKOFF
            .saturating_mul(1 << doublings)
            .min(MAX_BACKOFF)
            .min(self.interval.max(FIRST_BACKOFF));
        self.jittered(backoff)
    }

    /// `base` scaled by a factor in [1 − J, 1 + J].
    fn jittered(&mut self, base: Duration) -> Duration {
        let span = 2 * JITTER_PERMILLE + 1;
        let permille = 1000 - JITTER_PERMILLE + self.next() % span;
        let millis = (base.as_millis() as u64).saturating_mul(permille) / 1000;
        Duration::from_millis(millis)
    }

    /// splitmix64.
    fn next(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_twenty_percent_and_spreads() {
        let mut s = Schedule::new("dev-1", 42);
        let base = Duration::from_secs(100);
        let delays: Vec<Duration> = (0..2000).map(|_| s.answered(None, Some(base))).collect();
        for d in &delays {
            assert!(
                *d >= Duration::from_secs(80) && *d <= Duration::from_secs(120),
                "{d:?}"
            );
        }
        let (lo, hi) = (delays.iter().min().unwrap(), delays.iter().max().unwrap());
        assert!(
            *lo < Duration::from_secs(82) && *hi > Duration::from_secs(118),
            "{lo:?} {hi:?}"
        );
    }

    #[test]
    fn the_same_seed_gives_the_same_schedule_and_devices_differ() {
        let run = |id: &str| {
            let mut s = Schedule::new(id, 7);
            (0..5).map(|_| s.answered(None, None)).collect::<Vec<_>>()
        };
        assert_eq!(run("dev-1"), run("dev-1"));
        assert_ne!(run("dev-1"), run("dev-2"));
    }

    #[test]
    fn backoff_doubles_to_its_cap_and_an_answer_resets_it() {
        let mut s = Schedule::new("dev-1", 1);
        s.answered(None, Some(Duration::from_secs(3600)));
        let mut last = Duration::ZERO;
        for i in 0..12 {
            let d = s.failed();
            let base = FIRST_BACKOFF
                .saturating_mul(1 << i.min(20))
                .min(MAX_BACKOFF);
            assert!(
                d >= base * 8 / 10 && d <= base * 12 / 10,
                "retry {i}: {d:?}"
            );
            last = d;
        }
        assert!(last <= MAX_BACKOFF * 12 / 10);
        assert_eq!(s.failures(), 12);
        let d = s.answered(None, None);
        assert_eq!(s.failures(), 0);
        assert!(d >= Duration::from_secs(2880), "{d:?}");
    }

    #[test]
    fn a_hostile_server_interval_is_clamped() {
        let mut s = Schedule::new("dev-1", 3);
        s.answered(Some(Duration::ZERO), None);
        assert_eq!(s.interval(), MIN_INTERVAL);
        s.answered(Some(Duration::from_secs(u64::MAX / 2)), None);
        assert_eq!(s.interval(), MAX_INTERVAL);
    }
}
