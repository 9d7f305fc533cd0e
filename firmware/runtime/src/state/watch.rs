//! Watches: a [`Watcher`] yields [`WatchEvent`]s of one kind (optionally one id).
//!
//! Each live event carries the [`Bookmark`] of the write that caused it. A watcher
//! that is too slow for its kind's broadcast buffer replays the missed events from the
//! kind's history, under the state's lock, so it sees every event exactly once; only
//! when the history no longer reaches back does it fail with
//! [`WatchError::Expired`].

use std::collections::VecDeque;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use super::core::Kind;
use super::State;
use crate::error::WatchError;
use crate::resource::RawResource;

/// A position in the state's write history: the revision of one write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Bookmark(pub u64);

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
}

impl Watcher {
    pub(super) fn start(
        state: State,
        namespace: &str,
        type_name: &str,
        id: Option<&str>,
        since: Option<Bookmark>,
    ) -> Result<Self, WatchError> {
        let id: Option<Arc<str>> = id.map(Arc::from);
        let mut core = state.lock();
        let current = core.revision();
        if let Some(bookmark) = since {
            if bookmark > current {
                return Err(WatchError::FromTheFuture { bookmark, current });
            }
        }
        let kind = core.kind_mut(namespace, type_name, None);
        let pending = match since {
            None => snapshot(kind, id.as_deref(), current),
            Some(bookmark) => replay(kind, id.as_deref(), bookmark.0)?,
        };
        let rx = kind.tx.subscribe();
        let (namespace, type_name) = (kind.namespace.clone(), kind.type_name.clone());
        drop(core);
        Ok(Watcher {
            state,
            namespace,
            type_name,
            id,
            pending,
            rx,
            last: current.0,
        })
    }

    /// The next event.
    pub async fn next(&mut self) -> Result<WatchEvent, WatchError> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Ok(event);
            }
            match self.rx.recv().await {
                Ok(event) => {
                    if let Some(event) = self.accept(event) {
                        return Ok(event);
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
            if let Some(event) = self.pending.pop_front() {
                return Ok(Some(event));
            }
            match self.rx.try_recv() {
                Ok(event) => {
                    if let Some(event) = self.accept(event) {
                        return Ok(Some(event));
                    }
                }
                Err(broadcast::error::TryRecvError::Empty) => return Ok(None),
                Err(broadcast::error::TryRecvError::Lagged(_)) => self.catch_up()?,
                Err(broadcast::error::TryRecvError::Closed) => return Err(WatchError::Closed),
            }
        }
    }

    fn accept(&mut self, event: WatchEvent) -> Option<WatchEvent> {
        let revision = event.bookmark().map_or(0, |b| b.0);
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
        let state = self.state.clone();
        let mut core = state.lock();
        let current = core.revision();
        let kind = core.kind_mut(&self.namespace, &self.type_name, None);
        self.pending = replay(kind, self.id.as_deref(), self.last)?;
        self.rx = kind.tx.subscribe();
        self.last = current.0;
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

fn replay(kind: &Kind, id: Option<&str>, after: u64) -> Result<VecDeque<WatchEvent>, WatchError> {
    if after < kind.evicted_through {
        return Err(WatchError::Expired {
            bookmark: Bookmark(after),
            oldest: Bookmark(kind.evicted_through),
        });
    }
    // History is ordered by revision: skip what the watcher has by binary search.
    let first = kind
        .history
        .partition_point(|event| event.bookmark().is_some_and(|b| b.0 <= after));
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
