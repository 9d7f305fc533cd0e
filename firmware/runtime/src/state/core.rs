//! The in-memory index behind [`State`](super::State): resources per namespace and
//! type, the per-kind event history that makes bookmarks resumable, and the broadcast
//! channel each kind's watchers listen on. Every write goes through [`Core::commit`],
//! which persists first (for persistent types) and only then changes memory, so a
//! failed write changes nothing.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use tokio::sync::broadcast;

use super::{Bookmark, StateOptions, WatchEvent};
use crate::backend::{Backend, PersistedResource};
use crate::error::StateError;
use crate::resource::{Persistence, RawResource, ResourceKey, Sensitivity, TypeInfo};

/// Resources of one (namespace, type).
#[derive(Debug)]
pub(crate) struct Kind {
    pub namespace: Arc<str>,
    pub type_name: Arc<str>,
    pub info: TypeInfo,
    pub resources: BTreeMap<Arc<str>, Arc<RawResource>>,
    /// Recent events of this kind, oldest first.
    pub history: VecDeque<WatchEvent>,
    /// The newest revision dropped from `history` (0 when none was).
    pub evicted_through: u64,
    pub tx: broadcast::Sender<WatchEvent>,
}

/// What a write does to one resource.
pub(crate) enum Change {
    Put {
        new: Arc<RawResource>,
        created: bool,
    },
    Remove {
        old: Arc<RawResource>,
    },
}

#[derive(Debug)]
pub(crate) struct Core {
    kinds: HashMap<Box<str>, HashMap<Box<str>, Kind>>,
    revision: u64,
    options: StateOptions,
    backend: Box<dyn Backend>,
}

/// The info given to a kind first touched by untyped code: unknown types are treated
/// as sensitive until their Rust type registers.
fn placeholder_info() -> TypeInfo {
    let mut info = TypeInfo::loaded(Sensitivity::Sensitive);
    info.persistence = Persistence::Ephemeral;
    info
}

impl Core {
    pub fn new(options: StateOptions, backend: Box<dyn Backend>) -> Self {
        Core {
            kinds: HashMap::new(),
            revision: 0,
            options,
            backend,
        }
    }

    /// Adds resources read back from the backend, without events.
    pub fn restore(&mut self, records: Vec<(PersistedResource, Arc<RawResource>)>) {
        for (record, raw) in records {
            let kind = self.kind_mut(
                &raw.metadata.namespace,
                &raw.metadata.type_name,
                Some(TypeInfo::loaded(record.sensitivity)),
            );
            kind.resources.insert(raw.metadata.id.clone(), raw);
        }
    }

    pub fn revision(&self) -> Bookmark {
        Bookmark(self.revision)
    }

    pub fn kind(&self, namespace: &str, type_name: &str) -> Option<&Kind> {
        self.kinds.get(namespace)?.get(type_name)
    }

    pub fn kinds(&self) -> impl Iterator<Item = &Kind> {
        self.kinds.values().flat_map(|types| types.values())
    }

    /// The kind, created if missing. `info` from a Rust type replaces info that came
    /// from disk or from untyped access.
    pub fn kind_mut(
        &mut self,
        namespace: &str,
        type_name: &str,
        info: Option<TypeInfo>,
    ) -> &mut Kind {
        let capacity = self.options.channel_capacity;
        let types = self.kinds.entry(Box::from(namespace)).or_default();
        let kind = types.entry(Box::from(type_name)).or_insert_with(|| Kind {
            namespace: Arc::from(namespace),
            type_name: Arc::from(type_name),
            info: info.unwrap_or_else(placeholder_info),
            resources: BTreeMap::new(),
            history: VecDeque::new(),
            evicted_through: 0,
            tx: broadcast::channel(capacity).0,
        });
        if let Some(info) = info {
            if info.typed && !kind.info.typed {
                kind.info = info;
            }
        }
        kind
    }

    /// Persists (if the type persists), applies and announces one change.
    pub fn commit(
        &mut self,
        namespace: &str,
        type_name: &str,
        change: Change,
    ) -> Result<Bookmark, StateError> {
        let history_cap = self.options.history_per_kind;
        let revision = self.revision + 1;
        let Core { kinds, backend, .. } = self;
        let Some(kind) = kinds
            .get_mut(namespace)
            .and_then(|types| types.get_mut(type_name))
        else {
            // Callers create the kind before committing; reaching here is a bug in
            // this module, reported as a missing resource rather than a panic.
            let key = match &change {
                Change::Put { new, .. } => new.metadata.key(),
                Change::Remove { old } => old.metadata.key(),
            };
            return Err(StateError::NotFound { key });
        };
        if kind.info.persistence == Persistence::Persistent {
            persist(backend.as_mut(), kind, &change)?;
        }
        let bookmark = Some(Bookmark(revision));
        let event = match change {
            Change::Put { new, created } => {
                kind.resources.insert(new.metadata.id.clone(), new.clone());
                if created {
                    WatchEvent::Created {
                        resource: new,
                        bookmark,
                    }
                } else {
                    WatchEvent::Updated {
                        resource: new,
                        bookmark,
                    }
                }
            }
            Change::Remove { old } => {
                kind.resources.remove(&old.metadata.id);
                WatchEvent::Destroyed {
                    resource: old,
                    bookmark,
                }
            }
        };
        self.revision = revision;
        if kind.history.len() >= history_cap {
            if let Some(evicted) = kind.history.pop_front() {
                kind.evicted_through = evicted.bookmark().map_or(0, |b| b.0);
            }
        }
        kind.history.push_back(event.clone());
        // No receivers is fine: nobody watches this kind yet.
        let _ = kind.tx.send(event);
        Ok(Bookmark(revision))
    }
}

fn persist(backend: &mut dyn Backend, kind: &Kind, change: &Change) -> Result<(), StateError> {
    match change {
        Change::Put { new, .. } => {
            let key = new.metadata.key();
            let spec = (kind.info.to_json)(&new.spec).map_err(|reason| StateError::SpecEncode {
                key: key.clone(),
                reason,
            })?;
            let record = PersistedResource {
                metadata: new.metadata.clone(),
                sensitivity: kind.info.sensitivity,
                spec,
            };
            backend
                .put(&record)
                .map_err(|source| StateError::Backend { key, source })
        }
        Change::Remove { old } => {
            let key: ResourceKey = old.metadata.key();
            backend
                .remove(&key)
                .map_err(|source| StateError::Backend { key, source })
        }
    }
}
