use std::cell::RefCell;
use std::rc::Rc;

use super::*;

const IC: Duration = Duration::from_millis(1600);

/// A pin that records the levels it is driven to, and can be made to fail.
#[derive(Debug, Clone, Default)]
struct RecordingPin {
    levels: Rc<RefCell<Vec<bool>>>,
    broken: Rc<RefCell<bool>>,
}

#[derive(Debug)]
struct Broken;

impl digital::Error for Broken {
    fn kind(&self) -> digital::ErrorKind {
        digital::ErrorKind::Other
    }
}

impl digital::ErrorType for RecordingPin {
    type Error = Broken;
}

impl OutputPin for RecordingPin {
    fn set_low(&mut self) -> Result<(), Broken> {
        self.set(false)
    }
    fn set_high(&mut self) -> Result<(), Broken> {
        self.set(true)
    }
}

impl RecordingPin {
    fn set(&mut self, level: bool) -> Result<(), Broken> {
        if *self.broken.borrow() {
            return Err(Broken);
        }
        self.levels.borrow_mut().push(level);
        Ok(())
    }
    fn levels(&self) -> Vec<bool> {
        self.levels.borrow().clone()
    }
}

#[test]
fn every_feed_is_an_edge_on_the_feed_pin() {
    let feed = RecordingPin::default();
    let mut wd = PinWatchdog::always_running(feed.clone(), IC);
    assert_eq!(wd.arm(Duration::from_secs(5)), Ok(IC));
    for _ in 0..5 {
        wd.feed().unwrap();
    }
    assert_eq!(feed.levels(), [true, false, true, false, true, false]);
    assert_eq!(wd.timeout(), Some(IC));
}

#[test]
fn the_enable_pin_arms_and_an_orderly_disarm_disables() {
    let (feed, enable) = (RecordingPin::default(), RecordingPin::default());
    let mut wd = PinWatchdog::with_enable(feed.clone(), enable.clone(), EnableLevel::ActiveLow, IC);
    assert!(enable.levels().is_empty(), "untouched until armed");
    wd.arm(IC).unwrap();
    assert_eq!(enable.levels(), [false], "active low: low enables");
    wd.feed().unwrap();
    wd.disarm().unwrap();
    assert_eq!(enable.levels(), [false, true]);
    assert_eq!(feed.levels(), [true, false]);
}

#[test]
fn dropping_it_armed_leaves_the_ic_enabled() {
    let (feed, enable) = (RecordingPin::default(), RecordingPin::default());
    let mut wd = PinWatchdog::with_enable(feed, enable.clone(), EnableLevel::ActiveHigh, IC);
    wd.arm(IC).unwrap();
    drop(wd);
    assert_eq!(enable.levels(), [true]);
}

#[test]
fn an_ic_without_enable_pin_cannot_be_stopped() {
    let mut wd = PinWatchdog::always_running(RecordingPin::default(), IC);
    wd.arm(IC).unwrap();
    let err = wd.disarm().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported);
    assert!(err.to_string().contains("no enable pin"), "{err}");
}

#[test]
fn illegal_transitions_are_refused() {
    let feed = RecordingPin::default();
    let mut wd = PinWatchdog::always_running(feed.clone(), IC);
    assert_eq!(wd.feed().unwrap_err().kind(), ErrorKind::NotArmed);
    let err = wd.arm(Duration::from_secs(1)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TimeoutOutOfRange);
    assert!(err.to_string().contains("1.6s"), "{err}");
    assert!(feed.levels().is_empty());
    wd.arm(Duration::from_secs(2)).unwrap();
    assert_eq!(wd.arm(Duration::from_secs(2)), Ok(IC));
    assert_eq!(
        wd.arm(Duration::from_secs(3)).unwrap_err().kind(),
        ErrorKind::AlreadyArmed
    );
}

#[test]
fn a_failing_pin_is_named() {
    let feed = RecordingPin::default();
    let mut wd = PinWatchdog::always_running(feed.clone(), IC);
    wd.arm(IC).unwrap();
    *feed.broken.borrow_mut() = true;
    let err = wd.feed().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Device);
    assert_eq!(
        err,
        PinWatchdogError::Pin {
            role: PinRole::Feed,
            kind: digital::ErrorKind::Other,
            detail: "Broken".into()
        }
    );
    *feed.broken.borrow_mut() = false;
    wd.feed().unwrap();
    assert_eq!(
        feed.levels(),
        [true, false],
        "a failed toggle is retried at the same level"
    );
}
