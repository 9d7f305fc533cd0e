//! Watches: a [`Watcher`] yields [`WatchEvent`]s of one kind (optionally one id).
//!
//! Each live event carries the [`Bookmark`] of the write that caused it. A watcher
//! that is too slow for its kind's broadcast buffer replays the missed events from the
//! kind's history, under the state's lock, so it sees every event exactly once; only
//! when the history no longer reaches back does it fail with
//! [`WatchError::Expired`].
//!
//! A bookmark names the run of the state it came from ([`Epoch`]): history lives in
//! memory, so after a restart (a new state over the same file log) an old bookmark
//! cannot be resumed and is refused with [`WatchError::OtherEpoch`]; the watcher
//! watches again with a snapshot, in which the restored resources arrive.
//!
//! A watcher opened for an API client carries the client's role and checks it on
//! every event it hands out, not only when it starts: a kind nobody had written when
//! the watch began may turn out to be sensitive when its Rust type first writes.

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use super::core::{lock, Kind};
use super::State;
use crate::access::Role;
use crate::error::WatchError;
use crate::resource::RawResource;

/// One run of a state: chosen at random when the state is opened, so bookmarks of an
/// earlier run over the same storage (or of another state) are recognised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Epoch(pub u64);

impl fmt::Display for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// A position in the state's write history: the revision of one write, in one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Bookmark {
    /// The run of the state that handed it out.
    pub epoch: Epoch,
    /// The write's revision (rises with every write of the run, starting at 1).
    pub revision: u64,
}

impl fmt::Display for Bookmark {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.revision, self.epoch)
    }
}

/// One event of a watch.
#[derive(Debug, Clone)]
pub enum WatchEvent {
    /// The resource appeared (or, with `bookmark: None`, was part of the snapshot).
    Created {
        resource: Arc<RawResource>,
        bookmark: Option<Bookmark>,
    },
    /// The resource changed.
    Updated {
        resource: Arc<RawResource>,
        bookmark: Option<Bookmark>,
    },
    /// The resource is gone; this is its last state.
    Destroyed {
        resource: Arc<RawResource>,
        bookmark: Option<Bookmark>,
    },
    /// The snapshot is complete; resume from here to skip it.
    Bootstrapped { bookmark: Option<Bookmark> },
}

impl WatchEvent {
    /// Where to resume after this event; `None` for snapshot items (a watcher
    /// interrupted inside its snapshot must start over with a new snapshot).
    pub fn bookmark(&self) -> Option<Bookmark> {
        match self {
            WatchEvent::Created { bookmark, .. }
            | WatchEvent::Updated { bookmark, .. }
            | WatchEvent::Destroyed { bookmark, .. }
            | WatchEvent::Bootstrapped { bookmark } => *bookmark,
        }
    }

    /// The resource the event is about, if any.
    pub fn resource(&self) -> Option<&Arc<RawResource>> {
        match self {
            WatchEvent::Created { resource, .. }
            | WatchEvent::Updated { resource, .. }
            | WatchEvent::Destroyed { resource, .. } => Some(resource),
            WatchEvent::Bootstrapped { .. } => None,
        }
    }
}

/// A stream of events of one kind.
#[derive(Debug)]
pub struct Watcher {
    state: State,
    namespace: Arc<str>,
    type_name: Arc<str>,
    id: Option<Arc<str>>,
    pending: VecDeque<WatchEvent>,
    rx: broadcast::Receiver<WatchEvent>,
    /// Newest revision already queued or delivered.
    last: u64,
    /// The client role this watch serves (`None`: in-process code, which sees all).
    viewer: Option<Role>,
    /// The kind's sensitivity, as it is now.
    sensitive: Arc<AtomicBool>,
    /// Set once an event was withheld from the viewer: the watch has ended.
    forbidden: bool,
}

impl Watcher {
    pub(super) fn start(
        state: State,
        namespace: &str,
        type_name: &str,
        id: Option<&str>,
        since: Option<Bookmark>,
        viewer: Option<Role>,
    ) -> Result<Self, WatchError> {
        let id: Option<Arc<str>> = id.map(Arc::from);
        let core = state.core();
        if let Some(bookmark) = since {
            if bookmark.epoch != core.epoch() {
                return Err(WatchError::OtherEpoch {
                    bookmark,
                    epoch: core.epoch(),
                });
            }
        }
        let cell = core.kind_or_insert(namespace, type_name, None);
        let kind = lock(&cell.data);
        if let Some(role) = viewer {
            if forbids(role, &kind) {
                return Err(WatchError::Forbidden {
                    role,
                    type_name: type_name.to_owned(),
                });
            }
        }
        // Read under the kind's lock: every event of this kind up to `current` is in
        // the snapshot or the history, every later one reaches `rx`.
        let current = core.revision();
        if let Some(bookmark) = since {
            if bookmark.revision > current.revision {
                return Err(WatchError::FromTheFuture { bookmark, current });
            }
        }
        let pending = match since {
            None => snapshot(&kind, id.as_deref(), current),
            Some(bookmark) => replay(&kind, id.as_deref(), bookmark.revision, current)?,
        };
        let rx = kind.tx.subscribe();
        let (namespace, type_name) = (kind.namespace.clone(), kind.type_name.clone());
        let sensitive = kind.sensitive.clone();
        drop(kind);
        Ok(Watcher {
            state,
            namespace,
            type_name,
            id,
            pending,
            rx,
            last: current.revision,
            viewer,
            sensitive,
            forbidden: false,
        })
    }

    /// Withholds resource events from a viewer who may not see this kind; once one
    /// was withheld, the watch stays ended.
    fn screen(&mut self, event: WatchEvent) -> Result<WatchEvent, WatchError> {
        let Some(role) = self.viewer else {
            return Ok(event);
        };
        let hidden = role != Role::Admin
            && event.resource().is_some()
            && self.sensitive.load(Ordering::SeqCst);
        if self.forbidden || hidden {
            self.forbidden = true;
            self.pending.clear();
            return Err(WatchError::Forbidden {
                role,
                type_name: self.type_name.to_string(),
            });
        }
        Ok(event)
    }

    /// The next event.
    pub async fn next(&mut self) -> Result<WatchEvent, WatchError> {
        loop {
            if self.forbidden {
                return Err(self.forbidden_error());
            }
            if let Some(event) = self.pending.pop_front() {
                return self.screen(event);
            }
            match self.rx.recv().await {
                Ok(event) => {
                    if let Some(event) = self.accept(event) {
                        return self.screen(event);
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => self.catch_up()?,
                Err(broadcast::error::RecvError::Closed) => return Err(WatchError::Closed),
            }
        }
    }

    /// The next event if one is ready now.
    pub fn try_next(&mut self) -> Result<Option<WatchEvent>, WatchError> {
        loop {
            if self.forbidden {
                return Err(self.forbidden_error());
            }
            if let Some(event) = self.pending.pop_front() {
                return self.screen(event).map(Some);
            }
            match self.rx.try_recv() {
                Ok(event) => {
                    if let Some(event) = self.accept(event) {
                        return self.screen(event).map(Some);
                    }
                }
                Err(broadcast::error::TryRecvError::Empty) => return Ok(None),
                Err(broadcast::error::TryRecvError::Lagged(_)) => self.catch_up()?,
                Err(broadcast::error::TryRecvError::Closed) => return Err(WatchError::Closed),
            }
        }
    }

    fn forbidden_error(&self) -> WatchError {
        WatchError::Forbidden {
            role: self.viewer.unwrap_or(Role::Reader),
            type_name: self.type_name.to_string(),
        }
    }

    fn accept(&mut self, event: WatchEvent) -> Option<WatchEvent> {
        let revision = event.bookmark().map_or(0, |b| b.revision);
        if revision <= self.last {
            return None;
        }
        self.last = revision;
        match (&self.id, event.resource()) {
            (Some(id), Some(resource)) if resource.metadata.id != *id => None,
            _ => Some(event),
        }
    }

    /// Replays what the broadcast buffer dropped, from the kind's history.
    fn catch_up(&mut self) -> Result<(), WatchError> {
        let core = self.state.core();
        let cell = core.kind_or_insert(&self.namespace, &self.type_name, None);
        let kind = lock(&cell.data);
        let current = core.revision();
        self.pending = replay(&kind, self.id.as_deref(), self.last, current)?;
        self.rx = kind.tx.subscribe();
        self.last = current.revision;
        Ok(())
    }
}

fn snapshot(kind: &Kind, id: Option<&str>, current: Bookmark) -> VecDeque<WatchEvent> {
    let mut resources: Vec<_> = match id {
        Some(id) => kind.resources.get(id).cloned().into_iter().collect(),
        None => kind.resources.values().cloned().collect(),
    };
    resources.sort_unstable_by(|a, b| a.metadata.id.cmp(&b.metadata.id));
    let mut events: VecDeque<WatchEvent> = resources
        .into_iter()
        .map(|resource| WatchEvent::Created {
            resource,
            bookmark: None,
        })
        .collect();
    events.push_back(WatchEvent::Bootstrapped {
        bookmark: Some(current),
    });
    events
}

/// Whether a client with `role` may not see this kind's resources: a sensitive type
/// known from its Rust type or from disk. A placeholder for a type nobody wrote yet
/// holds nothing; watchers of it check each event as it comes.
pub(crate) fn forbids(role: Role, kind: &Kind) -> bool {
    role != Role::Admin
        && kind.sensitive.load(Ordering::SeqCst)
        && (kind.info.typed || !kind.resources.is_empty())
}

fn replay(
    kind: &Kind,
    id: Option<&str>,
    after: u64,
    current: Bookmark,
) -> Result<VecDeque<WatchEvent>, WatchError> {
    if after < kind.evicted_through {
        return Err(WatchError::Expired {
            bookmark: Bookmark {
                epoch: current.epoch,
                revision: after,
            },
            oldest: Bookmark {
                epoch: current.epoch,
                revision: kind.evicted_through,
            },
        });
    }
    // History is ordered by revision: skip what the watcher has by binary search.
    let first = kind
        .history
        .partition_point(|event| event.bookmark().is_some_and(|b| b.revision <= after));
    Ok(kind
        .history
        .range(first..)
        .filter(|event| match (id, event.resource()) {
            (Some(id), Some(resource)) => &*resource.metadata.id == id,
            _ => true,
        })
        .cloned()
        .collect())
}
