//! What QEMU's QMP events say happened to the board, as [`BoardEvent`]s.
//!
//! QEMU reports a watchdog reset twice: a `WATCHDOG` event (`action: reset`), then the
//! `RESET` it causes. The pair is one [`BoardEvent::WatchdogReset`]; the `RESET` that
//! follows a `WATCHDOG` is absorbed whatever reason it names. Any other `RESET` is the
//! guest (reboot(2), a kernel panic with `panic=N`, a triple fault) or the harness
//! (`system_reset`): [`BoardEvent::Reset`]. A `SHUTDOWN` the guest asked for is
//! [`BoardEvent::PoweredOff`]; one QEMU reports because the harness ended it (`quit`, a
//! signal) is not the board's doing and is dropped. A power cut (SIGKILL) leaves no event
//! at all: the board records it itself.

use std::time::{Instant, SystemTime};

use crate::qemu::QmpEvent;
use crate::rig::{BoardEvent, TimedEvent};

/// Turns QMP events into board events, remembering a `WATCHDOG` until its `RESET`.
#[derive(Debug, Default)]
pub struct EventTranslator {
    watchdog_reset_pending: bool,
}

impl EventTranslator {
    /// The board event `event` stands for, if any, stamped with when QEMU saw it.
    pub fn translate(&mut self, event: &QmpEvent) -> Option<TimedEvent> {
        let field = |k: &str| event.data.get(k).and_then(|v| v.as_str()).unwrap_or("");
        let board_event = match event.name.as_str() {
            "WATCHDOG" => {
                // `-action watchdog=reset` is what the board asks for; other actions
                // (pause, poweroff) would still be the watchdog firing.
                self.watchdog_reset_pending = field("action") == "reset";
                BoardEvent::WatchdogReset
            }
            "RESET" => {
                if std::mem::take(&mut self.watchdog_reset_pending) || field("reason") == "watchdog"
                {
                    return None;
                }
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

    #[test]
    fn a_watchdog_reset_is_one_event_and_a_later_reboot_another() {
        let got = translate_all(&[
            event("WATCHDOG", json!({"action": "reset"})),
            event("RESET", json!({"guest": true, "reason": "guest-reset"})),
            event("RESET", json!({"guest": true, "reason": "guest-reset"})),
        ]);
        assert_eq!(got, vec![BoardEvent::WatchdogReset, BoardEvent::Reset]);
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
