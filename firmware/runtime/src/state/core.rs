//! The in-memory index behind [`State`](super::State): resources per namespace and
//! type, the per-kind event history that makes bookmarks resumable, and the broadcast
//! channel each kind's watchers listen on. Every write goes through [`KindWriter::commit`],
//! which persists first (for persistent types) and only then changes memory, so a
//! failed write changes nothing.

use std::collections::{HashMap, VecDeque};
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
    pub resources: HashMap<Arc<str>, Arc<RawResource>>,
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
    /// By type name, then (almost always one) namespace: one hash per lookup.
    kinds: HashMap<Box<str>, Vec<Kind>>,
    revision: u64,
    options: StateOptions,
    backend: Box<dyn Backend>,
}

/// One kind opened for writing, with what a commit needs beside it.
pub(crate) struct KindWriter<'a> {
    pub kind: &'a mut Kind,
    backend: &'a mut dyn Backend,
    revision: &'a mut u64,
    history_cap: usize,
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
        self.kinds
            .get(type_name)?
            .iter()
            .find(|k| &*k.namespace == namespace)
    }

    pub fn kinds(&self) -> impl Iterator<Item = &Kind> {
        self.kinds.values().flatten()
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
        // Look up before inserting: the entry API would allocate the key every call.
        if !self.kinds.contains_key(type_name) {
            self.kinds.insert(Box::from(type_name), Vec::new());
        }
        let namespaces = match self.kinds.get_mut(type_name) {
            Some(namespaces) => namespaces,
            None => unreachable!("inserted above"),
        };
        let index = match namespaces.iter().position(|k| &*k.namespace == namespace) {
            Some(index) => index,
            None => {
                namespaces.push(Kind {
                    namespace: Arc::from(namespace),
                    type_name: Arc::from(type_name),
                    info: info.unwrap_or_else(placeholder_info),
                    resources: HashMap::new(),
                    history: VecDeque::new(),
                    evicted_through: 0,
                    tx: broadcast::channel(capacity).0,
                });
                namespaces.len() - 1
            }
        };
        let kind = &mut namespaces[index];
        if let Some(info) = info {
            if info.typed && !kind.info.typed {
                kind.info = info;
            }
        }
        kind
    }

    /// The kind opened for a write.
    pub fn writer(
        &mut self,
        namespace: &str,
        type_name: &str,
        info: Option<TypeInfo>,
    ) -> KindWriter<'_> {
        let history_cap = self.options.history_per_kind;
        self.kind_mut(namespace, type_name, info);
        let Core {
            kinds,
            backend,
            revision,
            ..
        } = self;
        let kind = match kinds
            .get_mut(type_name)
            .and_then(|ns| ns.iter_mut().find(|k| &*k.namespace == namespace))
        {
            Some(kind) => kind,
            None => unreachable!("created by kind_mut"),
        };
        KindWriter {
            kind,
            backend: backend.as_mut(),
            revision,
            history_cap,
        }
    }
}

impl KindWriter<'_> {
    /// Persists (if the type persists), applies and announces one change.
    pub fn commit(self, change: Change) -> Result<Bookmark, StateError> {
        let KindWriter {
            kind,
            backend,
            revision,
            history_cap,
        } = self;
        if kind.info.persistence == Persistence::Persistent {
            persist(backend, kind, &change)?;
        }
        let next = *revision + 1;
        let bookmark = Some(Bookmark(next));
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
        *revision = next;
        if kind.history.len() >= history_cap {
            if let Some(evicted) = kind.history.pop_front() {
                kind.evicted_through = evicted.bookmark().map_or(0, |b| b.0);
            }
        }
        kind.history.push_back(event.clone());
        // No receivers is fine: nobody watches this kind yet.
        let _ = kind.tx.send(event);
        Ok(Bookmark(next))
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
