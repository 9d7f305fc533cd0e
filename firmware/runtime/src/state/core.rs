//! The in-memory index behind [`State`](super::State): resources per namespace and
//! type, the per-kind event history that makes bookmarks resumable, and the broadcast
//! channel each kind's watchers listen on. Every write goes through [`Core::write`],
//! which persists first (for persistent types) and only then changes memory, so a
//! failed write changes nothing.
//!
//! Locking: each kind has two mutexes, a writer gate and its data; the map of kinds is
//! a read-write lock held only to find or add a kind (never while a kind's lock is
//! awaited). A write takes its kind's gate, then the data to check and build the
//! change; for a persistent kind it lets go of the data while the backend writes and
//! fsyncs (under the gate and the backend's lock), then takes the data again to apply
//! and announce. So a slow disk delays only the next writers of persistent kinds;
//! readers, watchers and writers of ephemeral kinds never wait for it. Lock order is
//! gate, data, backend (the data lock is never held while waiting for the backend);
//! no operation holds two kinds at once.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use tokio::sync::broadcast;

use super::{Bookmark, Epoch, StateOptions, WatchEvent};
use crate::backend::{Backend, PersistedResource};
use crate::error::StateError;
use crate::resource::{Persistence, RawResource, ResourceKey, Sensitivity, TypeInfo};

/// Resources of one (namespace, type).
#[derive(Debug)]
pub(crate) struct Kind {
    pub namespace: Arc<str>,
    pub type_name: Arc<str>,
    pub info: TypeInfo,
    /// Mirrors `info.sensitivity` for watchers, which check it on every event without
    /// taking the kind's lock.
    pub sensitive: Arc<AtomicBool>,
    /// Mirrors `resources.len()` for listings of kinds, which must not wait for a kind
    /// whose write is in its fsync.
    pub len: Arc<AtomicUsize>,
    /// The controller that claimed this kind as its exclusive output, if any: writes by
    /// anyone else are refused.
    pub exclusive_owner: Option<Arc<str>>,
    pub resources: HashMap<Arc<str>, Arc<RawResource>>,
    /// Recent events of this kind, oldest first.
    pub history: VecDeque<WatchEvent>,
    /// The newest revision dropped from `history` (0 when none was).
    pub evicted_through: u64,
    pub tx: broadcast::Sender<WatchEvent>,
}

/// A kind behind its own locks: `gate` orders its writers (held across the backend's
/// fsync), `data` guards its contents (held only briefly, never across I/O).
#[derive(Debug)]
pub(crate) struct KindCell {
    pub gate: Mutex<()>,
    pub data: Mutex<Kind>,
}

pub(crate) type SharedKind = Arc<KindCell>;

/// A kind in the index, with what can be read without its lock.
#[derive(Debug, Clone)]
pub(crate) struct KindEntry {
    pub namespace: Arc<str>,
    pub type_name: Arc<str>,
    /// How many resources it holds (kept by commits).
    pub len: Arc<AtomicUsize>,
    pub kind: SharedKind,
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
    /// Each kind beside its namespace, so finding one never waits for a kind's lock.
    kinds: RwLock<HashMap<Box<str>, Vec<KindEntry>>>,
    revision: AtomicU64,
    epoch: Epoch,
    options: StateOptions,
    backend: Mutex<Box<dyn Backend>>,
}

/// Locks a mutex; a panic while it was held cannot have left a half-applied write,
/// because commits change memory only after every fallible step.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The info given to a kind first touched by untyped code: unknown types are treated
/// as sensitive until their Rust type registers.
fn placeholder_info() -> TypeInfo {
    let mut info = TypeInfo::loaded(Sensitivity::Sensitive);
    info.persistence = Persistence::Ephemeral;
    info
}

/// A fresh epoch: random per state, so bookmarks of another run (or another state)
/// are told apart from this one's.
fn new_epoch() -> Epoch {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    Epoch(hasher.finish())
}

impl Kind {
    fn new(namespace: &str, type_name: &str, info: TypeInfo, capacity: usize) -> Self {
        Kind {
            namespace: Arc::from(namespace),
            type_name: Arc::from(type_name),
            sensitive: Arc::new(AtomicBool::new(info.sensitivity == Sensitivity::Sensitive)),
            info,
            len: Arc::new(AtomicUsize::new(0)),
            exclusive_owner: None,
            resources: HashMap::new(),
            history: VecDeque::new(),
            evicted_through: 0,
            tx: broadcast::channel(capacity).0,
        }
    }

    /// Takes `info` from a Rust type over info that came from disk or untyped access.
    pub fn learn(&mut self, info: Option<TypeInfo>) {
        if let Some(info) = info {
            if info.typed && !self.info.typed {
                self.info = info;
                self.sensitive
                    .store(info.sensitivity == Sensitivity::Sensitive, Ordering::SeqCst);
            }
        }
    }

    /// Refuses a write by anyone but the controller that claimed this kind.
    pub fn check_exclusive(
        &self,
        key: &ResourceKey,
        writer: Option<&str>,
    ) -> Result<(), StateError> {
        match &self.exclusive_owner {
            Some(owner) if Some(&**owner) != writer => Err(StateError::ExclusiveOutput {
                key: key.clone(),
                owner: owner.to_string(),
                writer: writer.map(str::to_owned),
            }),
            _ => Ok(()),
        }
    }
}

impl Core {
    pub fn new(options: StateOptions, backend: Box<dyn Backend>) -> Self {
        Core {
            kinds: RwLock::new(HashMap::new()),
            revision: AtomicU64::new(0),
            epoch: new_epoch(),
            options,
            backend: Mutex::new(backend),
        }
    }

    /// Adds resources read back from the backend, without events.
    pub fn restore(&self, records: Vec<(PersistedResource, Arc<RawResource>)>) {
        for (record, raw) in records {
            let kind = self.kind_or_insert(
                &raw.metadata.namespace,
                &raw.metadata.type_name,
                Some(TypeInfo::loaded(record.sensitivity)),
            );
            let mut kind = lock(&kind.data);
            kind.resources.insert(raw.metadata.id.clone(), raw);
            kind.len.store(kind.resources.len(), Ordering::SeqCst);
        }
    }

    pub fn epoch(&self) -> Epoch {
        self.epoch
    }

    /// The newest revision handed out.
    pub fn revision(&self) -> Bookmark {
        Bookmark {
            epoch: self.epoch,
            revision: self.revision.load(Ordering::SeqCst),
        }
    }

    pub fn kind(&self, namespace: &str, type_name: &str) -> Option<SharedKind> {
        let kinds = self.kinds.read().unwrap_or_else(|p| p.into_inner());
        kinds
            .get(type_name)?
            .iter()
            .find(|entry| &*entry.namespace == namespace)
            .map(|entry| entry.kind.clone())
    }

    pub fn kinds(&self) -> Vec<KindEntry> {
        let kinds = self.kinds.read().unwrap_or_else(|p| p.into_inner());
        kinds.values().flatten().cloned().collect()
    }

    /// The kind, created if missing. `info` from a Rust type replaces info that came
    /// from disk or from untyped access (see [`Kind::learn`]; the caller applies it
    /// under the kind's lock).
    pub fn kind_or_insert(
        &self,
        namespace: &str,
        type_name: &str,
        info: Option<TypeInfo>,
    ) -> SharedKind {
        if let Some(kind) = self.kind(namespace, type_name) {
            return kind;
        }
        let mut kinds = self.kinds.write().unwrap_or_else(|p| p.into_inner());
        let namespaces = kinds.entry(Box::from(type_name)).or_default();
        // Someone may have added it between the read and the write lock.
        if let Some(entry) = namespaces
            .iter()
            .find(|entry| &*entry.namespace == namespace)
        {
            return entry.kind.clone();
        }
        let kind = Kind::new(
            namespace,
            type_name,
            info.unwrap_or_else(placeholder_info),
            self.options.channel_capacity,
        );
        let entry = KindEntry {
            namespace: kind.namespace.clone(),
            type_name: kind.type_name.clone(),
            len: kind.len.clone(),
            kind: Arc::new(KindCell {
                gate: Mutex::new(()),
                data: Mutex::new(kind),
            }),
        };
        namespaces.push(entry.clone());
        entry.kind
    }

    /// One write to a kind: `build` checks the request against the kind and returns
    /// the change to make (or none) with the caller's result; the change is then
    /// persisted (if the type persists), applied and announced.
    ///
    /// The kind's gate is held throughout, so writers of one kind follow each other
    /// and `build` always sees the effect of the previous write. The data lock is
    /// released while the backend writes: readers and watchers of the kind see the
    /// old state until the write is durable, then the new one.
    pub fn write<R>(
        &self,
        cell: &KindCell,
        info: Option<TypeInfo>,
        build: impl FnOnce(&mut Kind) -> Result<(Option<Change>, R), StateError>,
    ) -> Result<R, StateError> {
        let _gate = lock(&cell.gate);
        let mut kind = lock(&cell.data);
        kind.learn(info);
        let (change, result) = build(&mut kind)?;
        let Some(change) = change else {
            return Ok(result);
        };
        if kind.info.persistence == Persistence::Persistent {
            let record = encode(&kind, &change)?;
            drop(kind);
            write_record(lock(&self.backend).as_mut(), record)?;
            kind = lock(&cell.data);
        }
        self.apply(&mut kind, change);
        Ok(result)
    }

    /// Applies and announces a change that is already durable (or needs no
    /// durability). Revisions are handed out under the kind's gate and data lock, so
    /// they rise within a kind.
    fn apply(&self, kind: &mut Kind, change: Change) {
        let next = self.revision.fetch_add(1, Ordering::SeqCst) + 1;
        let bookmark = Some(Bookmark {
            epoch: self.epoch,
            revision: next,
        });
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
        kind.len.store(kind.resources.len(), Ordering::SeqCst);
        if kind.history.len() >= self.options.history_per_kind {
            if let Some(evicted) = kind.history.pop_front() {
                kind.evicted_through = evicted.bookmark().map_or(0, |b| b.revision);
            }
        }
        kind.history.push_back(event.clone());
        // No receivers is fine: nobody watches this kind yet.
        let _ = kind.tx.send(event);
    }
}

/// A change as the backend records it.
enum Record {
    Put(ResourceKey, PersistedResource),
    Remove(ResourceKey),
}

fn encode(kind: &Kind, change: &Change) -> Result<Record, StateError> {
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
            Ok(Record::Put(key, record))
        }
        Change::Remove { old } => Ok(Record::Remove(old.metadata.key())),
    }
}

fn write_record(backend: &mut dyn Backend, record: Record) -> Result<(), StateError> {
    match record {
        Record::Put(key, record) => backend
            .put(&record)
            .map_err(|source| StateError::Backend { key, source }),
        Record::Remove(key) => backend
            .remove(&key)
            .map_err(|source| StateError::Backend { key, source }),
    }
}
