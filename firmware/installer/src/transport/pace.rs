//! The minimum-progress rule: a download that keeps a connection alive but delivers
//! almost nothing (one byte every few seconds, or a server that drops every connection
//! after a byte, which resets the retry count each time) fails instead of running
//! forever. Only time spent waiting on the network counts (reads, connects and retry
//! waits), so a slow seed scan or a slow disk never looks like a slow link.
//!
//! The default is generous, for satellite links: at least 1 KiB/s averaged over each
//! 10 minutes of network time.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Fail when less than `bytes_per_sec` arrives, averaged over `window` of network time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MinProgress {
    pub bytes_per_sec: u64,
    pub window: Duration,
}

impl Default for MinProgress {
    fn default() -> Self {
        Self {
            bytes_per_sec: 1024,
            window: Duration::from_secs(600),
        }
    }
}

impl MinProgress {
    fn needed(&self) -> u64 {
        let secs = self.window.as_secs_f64();
        (self.bytes_per_sec as f64 * secs) as u64
    }
}

/// Time as the fetcher sees it: tests pass a clock that advances when told.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> Instant;
    fn sleep(&self, d: Duration);
}

/// The machine's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn sleep(&self, d: Duration) {
        std::thread::sleep(d);
    }
}

/// Bytes and network time in the current window.
#[derive(Debug, Default)]
struct Window {
    waited: Duration,
    bytes: u64,
}

/// Tracks the rule across every download of one install (all threads).
#[derive(Debug)]
pub(crate) struct Pace {
    rule: MinProgress,
    window: Mutex<Window>,
}

/// Too little arrived: `bytes` in `window` of network time.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TooSlow {
    pub bytes: u64,
    pub window: Duration,
}

impl Pace {
    pub(crate) fn new(rule: MinProgress) -> Self {
        Self {
            rule,
            window: Mutex::new(Window::default()),
        }
    }

    /// Records `bytes` that arrived after waiting `waited` on the network.
    pub(crate) fn record(&self, waited: Duration, bytes: u64) -> Result<(), TooSlow> {
        let Ok(mut w) = self.window.lock() else {
            return Ok(());
        };
        w.waited += waited;
        w.bytes += bytes;
        if w.waited < self.rule.window {
            return Ok(());
        }
        let outcome = if w.bytes < self.rule.needed() {
            Err(TooSlow {
                bytes: w.bytes,
                window: w.waited,
            })
        } else {
            Ok(())
        };
        *w = Window::default();
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULE: MinProgress = MinProgress {
        bytes_per_sec: 100,
        window: Duration::from_secs(10),
    };

    #[test]
    fn a_trickle_fails_once_a_window_of_network_time_has_passed() {
        let pace = Pace::new(RULE);
        for _ in 0..9 {
            pace.record(Duration::from_secs(1), 10).unwrap();
        }
        let slow = pace.record(Duration::from_secs(1), 10).unwrap_err();
        assert_eq!(slow.bytes, 100);
    }

    #[test]
    fn enough_bytes_per_window_pass_and_the_window_starts_over() {
        let pace = Pace::new(RULE);
        for _ in 0..30 {
            pace.record(Duration::from_secs(1), 100).unwrap();
        }
        // A burst then a stall within one window averages out.
        pace.record(Duration::from_secs(1), 1000).unwrap();
        pace.record(Duration::from_secs(9), 0).unwrap();
    }
}
