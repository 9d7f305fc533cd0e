use super::*;
use crate::clock::ManualClock;

const SECOND: Duration = Duration::from_secs(1);

fn armed(
    timeout: Duration,
) -> (
    FakeWatchdog<ManualClock>,
    FakeWatchdogMonitor<ManualClock>,
    ManualClock,
) {
    let clock = ManualClock::new();
    let (mut wd, monitor) = FakeWatchdog::new(clock.clone());
    assert_eq!(wd.arm(timeout), Ok(timeout));
    (wd, monitor, clock)
}

#[test]
fn feeding_before_the_deadline_keeps_it_from_firing() {
    let (mut wd, monitor, clock) = armed(10 * SECOND);
    for _ in 0..100 {
        clock.advance(9 * SECOND);
        assert_eq!(wd.feed(), Ok(()));
    }
    assert_eq!(monitor.fired_at(), None);
    assert_eq!(monitor.feed_count(), 100);
    assert_eq!(monitor.last_feed(), Some(clock.now()));
}

#[test]
fn fires_exactly_one_timeout_after_the_last_feed() {
    let (mut wd, monitor, clock) = armed(10 * SECOND);
    clock.advance(4 * SECOND);
    wd.feed().unwrap();
    let fed = clock.now();
    clock.advance(9 * SECOND);
    assert_eq!(monitor.fired_at(), None);
    clock.advance(SECOND);
    assert_eq!(monitor.fired_at(), Some(fed + 10 * SECOND));
}

#[test]
fn a_late_feed_is_refused_because_the_board_is_resetting() {
    let (mut wd, monitor, clock) = armed(5 * SECOND);
    clock.advance(7 * SECOND);
    let err = wd.feed().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Fired);
    assert_eq!(
        err,
        FakeWatchdogError::Fired {
            late_by: 2 * SECOND
        }
    );
    assert_eq!(monitor.feed_count(), 0);
    assert_eq!(wd.disarm().unwrap_err().kind(), ErrorKind::Fired);
}

#[test]
fn feeding_before_arming_is_refused() {
    let (mut wd, monitor) = FakeWatchdog::new(ManualClock::new());
    assert_eq!(wd.feed().unwrap_err().kind(), ErrorKind::NotArmed);
    assert_eq!(wd.timeout(), None);
    assert_eq!(monitor.feed_count(), 0);
}

#[test]
fn re_arming_with_another_timeout_is_refused_and_the_same_one_is_a_no_op() {
    let (mut wd, _monitor, clock) = armed(10 * SECOND);
    let err = wd.arm(20 * SECOND).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyArmed);
    assert!(err.to_string().contains("10s"), "{err}");
    clock.advance(6 * SECOND);
    assert_eq!(wd.arm(10 * SECOND), Ok(10 * SECOND));
    clock.advance(5 * SECOND);
    // Re-arming with the same timeout did not restart the countdown: only a feed does.
    assert_eq!(wd.feed().unwrap_err().kind(), ErrorKind::Fired);
}

#[test]
fn timeouts_outside_the_device_range_are_refused() {
    let clock = ManualClock::new();
    let limits = FakeLimits {
        min: SECOND,
        max: 60 * SECOND,
    };
    let (mut wd, monitor) = FakeWatchdog::with_limits(clock, limits);
    for bad in [Duration::ZERO, SECOND / 2, 61 * SECOND] {
        let err = wd.arm(bad).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TimeoutOutOfRange, "{bad:?}");
    }
    assert!(!monitor.is_armed());
}

#[test]
fn orderly_disarm_stops_it_for_good() {
    let (wd, monitor, clock) = armed(5 * SECOND);
    clock.advance(SECOND);
    wd.disarm().unwrap();
    clock.advance(3600 * SECOND);
    assert_eq!(monitor.fired_at(), None);
    assert!(monitor.closed_at().is_some());
    assert!(!monitor.dropped_armed());
}

#[test]
fn dropping_it_armed_is_a_crash_and_it_still_fires() {
    let (wd, monitor, clock) = armed(5 * SECOND);
    let armed_at = clock.now();
    drop(wd);
    assert!(monitor.dropped_armed());
    clock.advance(5 * SECOND);
    assert_eq!(monitor.fired_at(), Some(armed_at + 5 * SECOND));
    assert_eq!(monitor.closed_at(), None);
}

#[test]
fn disarming_a_never_armed_watchdog_does_nothing() {
    let (wd, monitor) = FakeWatchdog::new(ManualClock::new());
    assert_eq!(wd.disarm(), Ok(()));
    assert_eq!(monitor.closed_at(), None);
    assert!(!monitor.dropped_armed());
}
