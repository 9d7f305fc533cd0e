//! The system clock behind a trait: the daemon steps it only on a device (through
//! [`LinuxClock`], which needs `CAP_SYS_TIME`); in `--root` mode and in tests a
//! [`RecordingClock`] takes the steps instead and never touches the host's clock.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// Why the clock could not be set.
#[derive(Debug, thiserror::Error)]
#[error("could not set the system clock to {to:?}: {message}")]
pub struct ClockError {
    /// The time asked for.
    pub to: SystemTime,
    /// What the system said.
    pub message: String,
}

/// The wall clock the time controller reads and steps.
pub trait SystemClock: Send + Sync + std::fmt::Debug + 'static {
    /// The clock's time now.
    fn now(&self) -> SystemTime;
    /// Steps the clock to `to`.
    fn set(&self, to: SystemTime) -> Result<(), ClockError>;
}

/// The real clock: `CLOCK_REALTIME`, stepped with `clock_settime(2)`. Only for a device.
#[derive(Debug, Default, Clone, Copy)]
pub struct LinuxClock;

impl SystemClock for LinuxClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }

    fn set(&self, to: SystemTime) -> Result<(), ClockError> {
        let since = to
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_err(|_| ClockError {
                to,
                message: "before 1970".into(),
            })?;
        let spec = rustix::time::Timespec {
            tv_sec: i64::try_from(since.as_secs()).map_err(|_| ClockError {
                to,
                message: "too far in the future".into(),
            })?,
            tv_nsec: i64::from(since.subsec_nanos()) as _,
        };
        rustix::time::clock_settime(rustix::time::ClockId::Realtime, spec).map_err(|e| ClockError {
            to,
            message: e.to_string(),
        })
    }
}

#[derive(Debug)]
struct Recorded {
    /// `None`: follow the host's clock; `Some`: a start of its own (and when it was
    /// taken), from which it runs at the host's rate.
    fixed: Option<(SystemTime, std::time::Instant)>,
    /// What `set` moved the clock by, in nanoseconds (signed).
    offset_nanos: i128,
    /// Every time `set` was called with.
    sets: Vec<SystemTime>,
}

/// A clock that records steps instead of making them: in `--root` mode it follows the
/// host's clock shifted by the steps taken; in tests it can start at a time of its own
/// (1970, say) and run from there.
#[derive(Debug, Clone)]
pub struct RecordingClock {
    inner: Arc<Mutex<Recorded>>,
}

fn shift(t: SystemTime, nanos: i128) -> SystemTime {
    let magnitude = Duration::from_nanos(u64::try_from(nanos.unsigned_abs()).unwrap_or(u64::MAX));
    if nanos >= 0 {
        t.checked_add(magnitude).unwrap_or(t)
    } else {
        t.checked_sub(magnitude).unwrap_or(SystemTime::UNIX_EPOCH)
    }
}

fn signed_nanos(from: SystemTime, to: SystemTime) -> i128 {
    match to.duration_since(from) {
        Ok(d) => d.as_nanos() as i128,
        Err(e) => -(e.duration().as_nanos() as i128),
    }
}

impl RecordingClock {
    /// Follows the host's clock.
    pub fn host() -> Self {
        Self::with(None)
    }

    /// Starts at `at` and runs at the host's rate (plus [`RecordingClock::advance`]).
    pub fn starting_at(at: SystemTime) -> Self {
        Self::with(Some((at, std::time::Instant::now())))
    }

    fn with(fixed: Option<(SystemTime, std::time::Instant)>) -> Self {
        RecordingClock {
            inner: Arc::new(Mutex::new(Recorded {
                fixed,
                offset_nanos: 0,
                sets: Vec::new(),
            })),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Recorded> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Moves the clock forward by `by` without recording a step (time passing).
    pub fn advance(&self, by: Duration) {
        let mut inner = self.lock();
        inner.offset_nanos += by.as_nanos() as i128;
    }

    /// Every time the clock was set to, in order.
    pub fn sets(&self) -> Vec<SystemTime> {
        self.lock().sets.clone()
    }

    fn base(inner: &Recorded) -> SystemTime {
        match inner.fixed {
            Some((start, taken)) => start + taken.elapsed(),
            None => SystemTime::now(),
        }
    }
}

impl SystemClock for RecordingClock {
    fn now(&self) -> SystemTime {
        let inner = self.lock();
        shift(Self::base(&inner), inner.offset_nanos)
    }

    fn set(&self, to: SystemTime) -> Result<(), ClockError> {
        let mut inner = self.lock();
        inner.offset_nanos = signed_nanos(Self::base(&inner), to);
        inner.sets.push(to);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recording_clock_reflects_steps_and_records_them() {
        let close = |a: SystemTime, b: SystemTime| {
            let gap = a.duration_since(b).unwrap_or_else(|e| e.duration());
            assert!(gap < Duration::from_secs(5), "{a:?} is not {b:?}");
        };
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(10);
        let clock = RecordingClock::starting_at(start);
        close(clock.now(), start);
        let target = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        clock.set(target).unwrap();
        close(clock.now(), target);
        clock.advance(Duration::from_secs(3600));
        close(clock.now(), target + Duration::from_secs(3600));
        clock.set(start).unwrap();
        close(clock.now(), start);
        assert_eq!(clock.sets(), vec![target, start]);
    }
}
