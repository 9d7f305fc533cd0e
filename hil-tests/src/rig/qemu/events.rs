//! What QEMU's QMP events say happened to the board, as [`BoardEvent`]s.
//!
//! QEMU reports a watchdog reset as a `WATCHDOG` event (`action: reset`) followed by the
//! `RESET`s it causes: QEMU 10.0 with an i6300esb sends two, both `guest-reset`, in the
//! same millisecond (measured). They are one [`BoardEvent::WatchdogReset`]: a `RESET`
//! stamped within [`WATCHDOG_RESET_WINDOW`] of a `WATCHDOG` is absorbed whatever reason
//! it names (without timestamps, every `RESET` until another kind of event is). Any other `RESET` is the
//! guest (reboot(2), a kernel panic with `panic=N`, a triple fault) or the harness
//! (`system_reset`): [`BoardEvent::Reset`]. A `SHUTDOWN` the guest asked for is
//! [`BoardEvent::PoweredOff`]; one QEMU reports because the harness ended it (`quit`, a
//! signal) is not the board's doing and is dropped. A power cut (SIGKILL) leaves no event
//! at all: the board records it itself.

use std::time::{Duration, Instant, SystemTime};

use crate::qemu::QmpEvent;
use crate::rig::{BoardEvent, TimedEvent};

/// How long after a `WATCHDOG` its `RESET`s may come.
pub const WATCHDOG_RESET_WINDOW: Duration = Duration::from_secs(1);

/// Turns QMP events into board events, remembering a `WATCHDOG` for its `RESET`s.
#[derive(Debug, Default)]
pub struct EventTranslator {
    /// The last `WATCHDOG` that reset the machine: when QEMU stamped it (`None` inside:
    /// it had no timestamp).
    watchdog_reset: Option<Option<SystemTime>>,
}

impl EventTranslator {
    /// Whether a `RESET` stamped `at` is the one the last watchdog reset caused.
    fn caused_by_watchdog(&self, at: Option<SystemTime>) -> bool {
        match (self.watchdog_reset, at) {
            (None, _) => false,
            (Some(Some(fired)), Some(at)) => at
                .duration_since(fired)
                .is_ok_and(|after| after <= WATCHDOG_RESET_WINDOW),
            (Some(_), _) => true,
        }
    }
}

impl EventTranslator {
    /// The board event `event` stands for, if any, stamped with when QEMU saw it.
    pub fn translate(&mut self, event: &QmpEvent) -> Option<TimedEvent> {
        let field = |k: &str| event.data.get(k).and_then(|v| v.as_str()).unwrap_or("");
        if event.name != "RESET" && event.name != "WATCHDOG" {
            self.watchdog_reset = None;
        }
        let board_event = match event.name.as_str() {
            "WATCHDOG" => {
                // `-action watchdog=reset` is what the board asks for; other actions
                // (pause, poweroff) would still be the watchdog firing.
                self.watchdog_reset = (field("action") == "reset").then_some(event.timestamp);
                BoardEvent::WatchdogReset
            }
            "RESET" => {
                if self.caused_by_watchdog(event.timestamp) || field("reason") == "watchdog" {
                    return None;
                }
                self.watchdog_reset = None;
                BoardEvent::Reset
            }
            "SHUTDOWN" => match field("reason") {
                "host-qmp-quit" | "host-signal" | "host-ui" | "host-qmp-system-reset" => {
                    return None
                }
                _ => BoardEvent::PoweredOff,
            },
            _ => return None,
        };
        Some(TimedEvent {
            at: instant_of(event.timestamp),
            event: board_event,
        })
    }
}

/// The monotonic instant of a wall-clock timestamp (now, when there is none or it is
/// in the future).
fn instant_of(stamp: Option<SystemTime>) -> Instant {
    let now = Instant::now();
    let Some(stamp) = stamp else { return now };
    match SystemTime::now().duration_since(stamp) {
        Ok(ago) => now.checked_sub(ago).unwrap_or(now),
        Err(_) => now,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::Duration;

    fn event(name: &str, data: serde_json::Value) -> QmpEvent {
        QmpEvent {
            name: name.into(),
            data,
            timestamp: None,
        }
    }

    fn translate_all(events: &[QmpEvent]) -> Vec<BoardEvent> {
        let mut t = EventTranslator::default();
        events
            .iter()
            .filter_map(|e| t.translate(e))
            .map(|e| e.event)
            .collect()
    }

    fn stamped(name: &str, data: serde_json::Value, at: SystemTime) -> QmpEvent {
        QmpEvent {
            timestamp: Some(at),
            ..event(name, data)
        }
    }

    #[test]
    fn a_watchdog_reset_with_its_two_resets_is_one_event_and_a_later_reboot_another() {
        // As QEMU 10.0 sent them for an i6300esb reset, then a reboot 20 s later.
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let reset = json!({"guest": true, "reason": "guest-reset"});
        let got = translate_all(&[
            stamped("WATCHDOG", json!({"action": "reset"}), t),
            stamped("RESET", reset.clone(), t + Duration::from_micros(30)),
            stamped("RESET", reset.clone(), t + Duration::from_micros(60)),
            stamped("RESET", reset.clone(), t + Duration::from_secs(20)),
        ]);
        assert_eq!(got, vec![BoardEvent::WatchdogReset, BoardEvent::Reset]);
    }

    #[test]
    fn without_timestamps_resets_up_to_the_next_other_event_are_the_watchdogs() {
        let reset = json!({"guest": true, "reason": "guest-reset"});
        let got = translate_all(&[
            event("WATCHDOG", json!({"action": "reset"})),
            event("RESET", reset.clone()),
            event("RESET", reset.clone()),
            event(
                "SHUTDOWN",
                json!({"guest": true, "reason": "guest-shutdown"}),
            ),
            event("RESET", reset),
        ]);
        assert_eq!(
            got,
            vec![
                BoardEvent::WatchdogReset,
                BoardEvent::PoweredOff,
                BoardEvent::Reset
            ]
        );
    }

    #[test]
    fn power_offs_by_the_guest_count_and_the_harness_quitting_does_not() {
        let got = translate_all(&[
            event(
                "SHUTDOWN",
                json!({"guest": true, "reason": "guest-shutdown"}),
            ),
            event(
                "SHUTDOWN",
                json!({"guest": false, "reason": "host-qmp-quit"}),
            ),
            event("SHUTDOWN", json!({"guest": false, "reason": "host-signal"})),
            event("STOP", json!({})),
            event(
                "RESET",
                json!({"guest": false, "reason": "host-qmp-system-reset"}),
            ),
        ]);
        assert_eq!(got, vec![BoardEvent::PoweredOff, BoardEvent::Reset]);
    }

    #[test]
    fn a_qemu_timestamp_dates_the_event_in_the_past() {
        let mut t = EventTranslator::default();
        let mut e = event("RESET", json!({"reason": "guest-reset"}));
        e.timestamp = Some(SystemTime::now() - Duration::from_secs(5));
        let timed = t.translate(&e).unwrap();
        let ago = Instant::now() - timed.at;
        assert!(ago >= Duration::from_secs(4), "{ago:?}");
    }
}
