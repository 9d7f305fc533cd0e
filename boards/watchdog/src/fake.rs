//! A working model of a watchdog for tests: it counts down on a clock the test controls,
//! records every feed, fires when a feed comes too late, and rejects what a real device
//! would not accept (feeding before arming, re-arming with another timeout, feeding after
//! it fired) with the same [`ErrorKind`]s as the real drivers.
//!
//! The [`FakeWatchdog`] is the device handed to the code under test; the
//! [`FakeWatchdogMonitor`] stays with the test and sees the board's side: when it fired,
//! which feeds arrived, whether it was closed in an orderly way. The monitor outlives the
//! driver, so a test can drop the driver (a crash) and watch the watchdog fire.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::clock::Clock;
use crate::{Error, ErrorKind, Watchdog};

/// At most this many feed instants are kept (the count goes on past it).
pub const FEED_LOG_LIMIT: usize = 100_000;

/// The timeouts the fake device accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FakeLimits {
    /// Shortest timeout.
    pub min: Duration,
    /// Longest timeout.
    pub max: Duration,
}

impl Default for FakeLimits {
    /// Whole range of a typical Linux watchdog driver: 1 s to 1 h.
    fn default() -> Self {
        Self {
            min: Duration::from_secs(1),
            max: Duration::from_secs(3600),
        }
    }
}

/// A request the fake watchdog refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FakeWatchdogError {
    /// Fed before it was armed.
    #[error("fake watchdog fed before it was armed")]
    NotArmed,
    /// Armed again with another timeout.
    #[error("fake watchdog is armed with a {current:?} timeout; re-arming with {requested:?} was refused")]
    AlreadyArmed {
        /// Timeout it runs with.
        current: Duration,
        /// Timeout asked for.
        requested: Duration,
    },
    /// Timeout outside [`FakeLimits`].
    #[error(
        "fake watchdog cannot count {requested:?}: its timeouts range from {min:?} to {max:?}"
    )]
    TimeoutOutOfRange {
        /// Timeout asked for.
        requested: Duration,
        /// Shortest accepted.
        min: Duration,
        /// Longest accepted.
        max: Duration,
    },
    /// It already fired; the board is resetting.
    #[error("fake watchdog fired {late_by:?} before this request; the board is resetting")]
    Fired {
        /// How long ago it fired.
        late_by: Duration,
    },
}

impl Error for FakeWatchdogError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::NotArmed => ErrorKind::NotArmed,
            Self::AlreadyArmed { .. } => ErrorKind::AlreadyArmed,
            Self::TimeoutOutOfRange { .. } => ErrorKind::TimeoutOutOfRange,
            Self::Fired { .. } => ErrorKind::Fired,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Disarmed,
    Armed {
        timeout: Duration,
        deadline: Instant,
    },
    Fired {
        at: Instant,
    },
    Closed {
        at: Instant,
    },
}

#[derive(Debug)]
struct Board {
    phase: Phase,
    feeds: Vec<Instant>,
    feed_count: u64,
    last_feed: Option<Instant>,
    dropped_armed: bool,
}

impl Board {
    /// Brings the phase up to `now`: an armed watchdog whose deadline passed has fired.
    fn settle(&mut self, now: Instant) {
        if let Phase::Armed { deadline, .. } = self.phase {
            if now >= deadline {
                self.phase = Phase::Fired { at: deadline };
            }
        }
    }
}

#[derive(Debug)]
struct Shared<C> {
    clock: C,
    limits: FakeLimits,
    board: Mutex<Board>,
}

impl<C: Clock> Shared<C> {
    /// The board, settled to the clock's current time.
    fn board(&self) -> MutexGuard<'_, Board> {
        let mut board = self.board.lock().unwrap_or_else(PoisonError::into_inner);
        board.settle(self.clock.now());
        board
    }
}

/// The fake device, handed to the code under test.
#[derive(Debug)]
pub struct FakeWatchdog<C: Clock> {
    shared: Arc<Shared<C>>,
}

/// The test's view of the fake device.
#[derive(Debug, Clone)]
pub struct FakeWatchdogMonitor<C: Clock> {
    shared: Arc<Shared<C>>,
}

impl<C: Clock> FakeWatchdog<C> {
    /// A disarmed fake with the default [`FakeLimits`].
    pub fn new(clock: C) -> (Self, FakeWatchdogMonitor<C>) {
        Self::with_limits(clock, FakeLimits::default())
    }

    /// A disarmed fake accepting timeouts within `limits`.
    pub fn with_limits(clock: C, limits: FakeLimits) -> (Self, FakeWatchdogMonitor<C>) {
        let shared = Arc::new(Shared {
            clock,
            limits,
            board: Mutex::new(Board {
                phase: Phase::Disarmed,
                feeds: Vec::new(),
                feed_count: 0,
                last_feed: None,
                dropped_armed: false,
            }),
        });
        let monitor = FakeWatchdogMonitor {
            shared: Arc::clone(&shared),
        };
        (Self { shared }, monitor)
    }

    fn fired(&self, at: Instant) -> FakeWatchdogError {
        FakeWatchdogError::Fired {
            late_by: self.shared.clock.now().saturating_duration_since(at),
        }
    }
}

impl<C: Clock> Watchdog for FakeWatchdog<C> {
    type Error = FakeWatchdogError;

    fn arm(&mut self, timeout: Duration) -> Result<Duration, FakeWatchdogError> {
        let FakeLimits { min, max } = self.shared.limits;
        if timeout < min || timeout > max {
            return Err(FakeWatchdogError::TimeoutOutOfRange {
                requested: timeout,
                min,
                max,
            });
        }
        let now = self.shared.clock.now();
        let mut board = self.shared.board();
        match board.phase {
            Phase::Armed {
                timeout: current, ..
            } if current == timeout => Ok(timeout),
            Phase::Armed {
                timeout: current, ..
            } => Err(FakeWatchdogError::AlreadyArmed {
                current,
                requested: timeout,
            }),
            Phase::Fired { at } => {
                drop(board);
                Err(self.fired(at))
            }
            Phase::Disarmed | Phase::Closed { .. } => {
                board.phase = Phase::Armed {
                    timeout,
                    deadline: now + timeout,
                };
                Ok(timeout)
            }
        }
    }

    fn feed(&mut self) -> Result<(), FakeWatchdogError> {
        let now = self.shared.clock.now();
        let mut board = self.shared.board();
        match board.phase {
            Phase::Armed { timeout, .. } => {
                board.phase = Phase::Armed {
                    timeout,
                    deadline: now + timeout,
                };
                if board.feeds.len() < FEED_LOG_LIMIT {
                    board.feeds.push(now);
                }
                board.feed_count += 1;
                board.last_feed = Some(now);
                Ok(())
            }
            Phase::Fired { at } => {
                drop(board);
                Err(self.fired(at))
            }
            Phase::Disarmed | Phase::Closed { .. } => Err(FakeWatchdogError::NotArmed),
        }
    }

    fn timeout(&self) -> Option<Duration> {
        match self.shared.board().phase {
            Phase::Armed { timeout, .. } => Some(timeout),
            _ => None,
        }
    }

    fn disarm(self) -> Result<(), FakeWatchdogError> {
        let now = self.shared.clock.now();
        let mut board = self.shared.board();
        match board.phase {
            Phase::Fired { at } => {
                drop(board);
                Err(self.fired(at))
            }
            Phase::Armed { .. } => {
                board.phase = Phase::Closed { at: now };
                Ok(())
            }
            Phase::Disarmed | Phase::Closed { .. } => Ok(()),
        }
    }
}

impl<C: Clock> Drop for FakeWatchdog<C> {
    /// A driver dropped while armed is a crash: the countdown goes on.
    fn drop(&mut self) {
        let mut board = self.shared.board();
        if matches!(board.phase, Phase::Armed { .. }) {
            board.dropped_armed = true;
        }
    }
}

impl<C: Clock> FakeWatchdogMonitor<C> {
    /// When the watchdog fired (reset the board), if it did by now.
    pub fn fired_at(&self) -> Option<Instant> {
        match self.shared.board().phase {
            Phase::Fired { at } => Some(at),
            _ => None,
        }
    }

    /// Whether it is counting down now.
    pub fn is_armed(&self) -> bool {
        matches!(self.shared.board().phase, Phase::Armed { .. })
    }

    /// When it was stopped by an orderly disarm, if it was.
    pub fn closed_at(&self) -> Option<Instant> {
        match self.shared.board().phase {
            Phase::Closed { at } => Some(at),
            _ => None,
        }
    }

    /// Whether the driver was dropped while armed (a crash, not an orderly close).
    pub fn dropped_armed(&self) -> bool {
        self.shared.board().dropped_armed
    }

    /// How many feeds arrived.
    pub fn feed_count(&self) -> u64 {
        self.shared.board().feed_count
    }

    /// When the feeds arrived (the first [`FEED_LOG_LIMIT`] of them).
    pub fn feeds(&self) -> Vec<Instant> {
        self.shared.board().feeds.clone()
    }

    /// When the last feed arrived.
    pub fn last_feed(&self) -> Option<Instant> {
        self.shared.board().last_feed
    }
}

#[cfg(test)]
mod tests;
