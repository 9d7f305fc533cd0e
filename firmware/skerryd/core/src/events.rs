//! The machine's event log: what happened, in order, for `Events` (watch, resumable
//! from an id). Controllers and the API push events; the log keeps the newest
//! [`EVENT_CAPACITY`] in memory and broadcasts new ones.
//!
//! Ids are `BBBBBBBB-SSSSSSSSSSSS`: the daemon's start number (persisted, one more at
//! every start) and a sequence within the start, both zero-padded, so ids sort as
//! strings in the order the events happened, across restarts too.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use tokio::sync::broadcast;

/// The most events kept for late readers.
pub const EVENT_CAPACITY: usize = 4096;
/// The most attributes one event carries, and their longest key and value.
pub const MAX_ATTRIBUTES: usize = 32;
/// The longest message and attribute value kept (longer ones are cut).
pub const MAX_TEXT: usize = 4096;

/// One event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Ordered, opaque to clients.
    pub id: String,
    /// When it was recorded.
    pub time: SystemTime,
    /// What happened, dotted: "service.state", "upgrade.phase", "config.applied".
    pub kind: String,
    /// The resource it concerns: (namespace, type, id).
    pub resource: Option<(String, String, String)>,
    /// For people.
    pub message: String,
    /// For scripts.
    pub attributes: BTreeMap<String, String>,
}

/// An event before the log numbers it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewEvent {
    /// See [`Event::kind`].
    pub kind: String,
    /// See [`Event::resource`].
    pub resource: Option<(String, String, String)>,
    /// See [`Event::message`].
    pub message: String,
    /// See [`Event::attributes`].
    pub attributes: BTreeMap<String, String>,
}

impl NewEvent {
    /// An event of `kind` saying `message`.
    pub fn new(kind: impl Into<String>, message: impl Into<String>) -> Self {
        NewEvent {
            kind: kind.into(),
            message: message.into(),
            ..NewEvent::default()
        }
    }

    /// The resource it concerns.
    pub fn about(mut self, namespace: &str, type_name: &str, id: &str) -> Self {
        self.resource = Some((namespace.into(), type_name.into(), id.into()));
        self
    }

    /// One attribute.
    pub fn with(mut self, key: impl Into<String>, value: impl ToString) -> Self {
        if self.attributes.len() < MAX_ATTRIBUTES {
            self.attributes.insert(key.into(), cut(value.to_string()));
        }
        self
    }
}

fn cut(mut text: String) -> String {
    if text.len() > MAX_TEXT {
        let mut end = MAX_TEXT;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

/// Events after an id are not all kept: the reader must start again from the oldest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the events after {after} are not all kept (the log keeps the newest {EVENT_CAPACITY} events of the daemon's current start; the oldest kept is {}); read again from the oldest kept event (an empty after_id)",
    oldest.as_deref().unwrap_or("none")
)]
pub struct Gap {
    /// The id the reader asked to start after.
    pub after: String,
    /// The oldest event kept now.
    pub oldest: Option<String>,
}

fn parse(id: &str) -> Option<(u32, u64)> {
    let (start, seq) = id.split_once('-')?;
    Some((start.parse().ok()?, seq.parse().ok()?))
}

fn sequence(id: &str) -> (u32, u64) {
    parse(id).unwrap_or((0, 0))
}

#[derive(Debug)]
struct Inner {
    start: u32,
    next: u64,
    kept: VecDeque<Event>,
}

/// The log. Cheap to clone; every clone is the same log.
#[derive(Debug, Clone)]
pub struct EventLog {
    inner: Arc<Mutex<Inner>>,
    sender: broadcast::Sender<Event>,
}

impl EventLog {
    /// A log for the daemon's `start`-th start.
    pub fn new(start: u32) -> Self {
        let (sender, _) = broadcast::channel(1024);
        EventLog {
            inner: Arc::new(Mutex::new(Inner {
                start,
                next: 1,
                kept: VecDeque::new(),
            })),
            sender,
        }
    }

    /// Records `event` and returns its id.
    pub fn push(&self, event: NewEvent) -> String {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let id = format!("{:08}-{:012}", inner.start, inner.next);
        inner.next += 1;
        let event = Event {
            id: id.clone(),
            time: SystemTime::now(),
            kind: cut(event.kind),
            resource: event.resource,
            message: cut(event.message),
            attributes: event.attributes,
        };
        if inner.kept.len() == EVENT_CAPACITY {
            inner.kept.pop_front();
        }
        inner.kept.push_back(event.clone());
        // Sent under the lock, so a reader that took the backlog and then subscribed
        // under the same lock misses nothing and sees nothing twice.
        let _ = self.sender.send(event);
        id
    }

    /// The kept events after `after` (all of them for `None`), and a receiver for the
    /// ones recorded from now on; or, when events after `after` are no longer kept
    /// (dropped from the ring, or recorded by an earlier start of the daemon, whose log
    /// is gone) or `after` names an event never recorded, a [`Gap`] saying so, so a
    /// reader never skips events without knowing.
    pub fn since(
        &self,
        after: Option<&str>,
    ) -> Result<(Vec<Event>, broadcast::Receiver<Event>), Gap> {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(after) = after {
            let oldest = inner.kept.front().map(|e| e.id.clone());
            let first_kept = inner.kept.front().map_or(inner.next, |e| sequence(&e.id).1);
            let gap = match parse(after) {
                None => true,
                Some((start, seq)) => {
                    start != inner.start || seq >= inner.next || seq.saturating_add(1) < first_kept
                }
            };
            if gap {
                return Err(Gap {
                    after: after.to_owned(),
                    oldest,
                });
            }
        }
        let backlog = inner
            .kept
            .iter()
            .filter(|e| after.is_none_or(|a| e.id.as_str() > a))
            .cloned()
            .collect();
        Ok((backlog, self.sender.subscribe()))
    }

    /// Every kept event, and a receiver for the ones recorded from now on.
    pub fn everything(&self) -> (Vec<Event>, broadcast::Receiver<Event>) {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        (
            inner.kept.iter().cloned().collect(),
            self.sender.subscribe(),
        )
    }

    /// Whether `id` is well formed (what `after_id` must look like).
    pub fn is_valid_id(id: &str) -> bool {
        let Some((start, seq)) = id.split_once('-') else {
            return false;
        };
        start.len() == 8
            && seq.len() == 12
            && start.bytes().all(|b| b.is_ascii_digit())
            && seq.bytes().all(|b| b.is_ascii_digit())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_sort_in_the_order_events_happened_across_starts() {
        let first = EventLog::new(9);
        let second = EventLog::new(10);
        let a = first.push(NewEvent::new("x", "a"));
        let b = first.push(NewEvent::new("x", "b"));
        let c = second.push(NewEvent::new("x", "c"));
        assert!(a < b && b < c, "{a} {b} {c}");
        assert!(EventLog::is_valid_id(&a));
        assert!(!EventLog::is_valid_id("12-x"));
    }

    #[test]
    fn since_returns_only_events_after_the_id_and_then_new_ones() {
        let log = EventLog::new(1);
        let a = log.push(NewEvent::new("x", "a"));
        log.push(NewEvent::new("x", "b"));
        let (backlog, mut rx) = log.since(Some(&a)).unwrap();
        assert_eq!(backlog.len(), 1);
        assert_eq!(backlog[0].message, "b");
        log.push(NewEvent::new("x", "c"));
        assert_eq!(rx.try_recv().unwrap().message, "c");
    }

    #[test]
    fn the_log_keeps_a_bounded_number_of_events() {
        let log = EventLog::new(1);
        for i in 0..EVENT_CAPACITY + 10 {
            log.push(NewEvent::new("x", i.to_string()));
        }
        let (backlog, _) = log.since(None).unwrap();
        assert_eq!(backlog.len(), EVENT_CAPACITY);
        assert_eq!(backlog[0].message, "10");
        // Reading on after a dropped event is refused, naming the oldest kept one;
        // after the event just before the oldest kept one is fine.
        let gap = log.since(Some("00000001-000000000005")).unwrap_err();
        assert_eq!(gap.oldest.as_deref(), Some(backlog[0].id.as_str()));
        assert!(log.since(Some("00000001-000000000010")).is_ok());
    }

    #[test]
    fn an_id_of_another_start_or_never_recorded_is_a_gap() {
        let log = EventLog::new(7);
        let a = log.push(NewEvent::new("x", "a"));
        assert!(log.since(Some(&a)).is_ok());
        assert!(
            log.since(Some("00000006-000000000001")).is_err(),
            "an earlier start's log is gone"
        );
        assert!(
            log.since(Some("00000007-000000000009")).is_err(),
            "never recorded"
        );
        assert!(
            log.since(Some("00000008-000000000001")).is_err(),
            "a later start"
        );
    }
}
