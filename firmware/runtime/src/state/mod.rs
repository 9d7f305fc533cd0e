//! The state: typed Get/List/Create/Update/Destroy/Teardown over resources, with
//! optimistic versions, finalizers, and watches that resume from bookmarks.
//!
//! Layout:
//! - `core`: the index, per-kind history and broadcast channels; every write commits
//!   there (persist first, then memory, then announce).
//! - `watch`: [`Watcher`], [`WatchEvent`], [`Bookmark`].
//!
//! All operations are synchronous and short (one mutex); only watching awaits. Writes
//! to persistent types wait for the backend (an fsync by default), which is fine for
//! the config-rate data that persists.

mod core;
mod watch;

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use self::core::{Change, Core, KindWriter};
pub use self::watch::{Bookmark, WatchEvent, Watcher};
use crate::backend::{Backend, FileLog, MemoryBackend};
use crate::error::{BackendError, StateError, WatchError};
use crate::resource::{
    AnySpec, LoadedSpec, Phase, RawResource, Resource, ResourceKey, ResourceSpec, Selector,
    TypeInfo, Version,
};

/// Tuning of a [`State`].
#[derive(Debug, Clone, Copy)]
pub struct StateOptions {
    /// Events kept per kind for resuming watchers from a bookmark. Each event holds
    /// the resource version it announced, so this bounds how many old versions of a
    /// kind stay in memory.
    pub history_per_kind: usize,
    /// Events buffered per kind for live watchers before a slow one has to replay
    /// from history (the buffer also holds on to the versions it announced).
    pub channel_capacity: usize,
}

impl Default for StateOptions {
    fn default() -> Self {
        StateOptions {
            history_per_kind: 1024,
            channel_capacity: 256,
        }
    }
}

/// What [`State::apply_owned`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// The resource did not exist.
    Created,
    /// The spec or labels changed.
    Updated,
    /// It already had this spec; nothing was written.
    Unchanged,
}

/// A handle to the state; clones share it.
#[derive(Debug, Clone)]
pub struct State {
    core: Arc<Mutex<Core>>,
}

impl State {
    /// A state that keeps everything in memory (persistent types too).
    pub fn in_memory() -> Self {
        Self::in_memory_with(StateOptions::default())
    }

    /// An in-memory state with non-default tuning.
    pub fn in_memory_with(options: StateOptions) -> Self {
        State {
            core: Arc::new(Mutex::new(Core::new(options, Box::new(MemoryBackend)))),
        }
    }

    /// A state whose persistent types live in a [`FileLog`] in `dir`.
    pub fn open_persistent(dir: &Path) -> Result<Self, BackendError> {
        Self::with_backend(Box::new(FileLog::open(dir)?), StateOptions::default())
    }

    /// A state over any backend, loading what it holds.
    pub fn with_backend(
        mut backend: Box<dyn Backend>,
        options: StateOptions,
    ) -> Result<Self, BackendError> {
        let records = backend.load()?;
        let mut core = Core::new(options, backend);
        core.restore(
            records
                .into_iter()
                .map(|record| {
                    let raw = Arc::new(RawResource {
                        metadata: record.metadata.clone(),
                        spec: Arc::new(LoadedSpec(record.spec.clone())),
                    });
                    (record, raw)
                })
                .collect(),
        );
        Ok(State {
            core: Arc::new(Mutex::new(core)),
        })
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Core> {
        // A panic while holding the lock cannot leave a half-applied write: commit
        // changes memory only after every fallible step.
        self.core
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The bookmark of the newest write.
    pub fn bookmark(&self) -> Bookmark {
        self.lock().revision()
    }

    /// Reads one resource.
    pub fn get<T: ResourceSpec>(&self, id: &str) -> Result<Resource<T>, StateError> {
        self.get_raw(T::NAMESPACE, T::TYPE, id)?.typed()
    }

    /// Reads one resource without knowing its Rust type.
    pub fn get_raw(
        &self,
        namespace: &str,
        type_name: &str,
        id: &str,
    ) -> Result<Arc<RawResource>, StateError> {
        let core = self.lock();
        core.kind(namespace, type_name)
            .and_then(|kind| kind.resources.get(id).cloned())
            .ok_or_else(|| StateError::NotFound {
                key: key(namespace, type_name, id),
            })
    }

    /// Lists the resources of `T` whose labels match `selector`, ordered by id.
    pub fn list<T: ResourceSpec>(
        &self,
        selector: &Selector,
    ) -> Result<Vec<Resource<T>>, StateError> {
        self.list_raw(T::NAMESPACE, T::TYPE, selector)
            .iter()
            .map(|raw| raw.typed())
            .collect()
    }

    /// Lists resources without knowing their Rust type.
    pub fn list_raw(
        &self,
        namespace: &str,
        type_name: &str,
        selector: &Selector,
    ) -> Vec<Arc<RawResource>> {
        let core = self.lock();
        let mut found: Vec<Arc<RawResource>> = core
            .kind(namespace, type_name)
            .map(|kind| {
                kind.resources
                    .values()
                    .filter(|raw| selector.matches(&raw.metadata.labels))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        drop(core);
        found.sort_unstable_by(|a, b| a.metadata.id.cmp(&b.metadata.id));
        found
    }

    /// Creates a resource; its metadata's owner becomes the owner. Returns its version.
    pub fn create<T: ResourceSpec>(&self, resource: Resource<T>) -> Result<Version, StateError> {
        check_id::<T>(&resource.metadata.id)?;
        let mut core = self.lock();
        let writer = core.writer(T::NAMESPACE, T::TYPE, Some(TypeInfo::of::<T>()));
        if writer.kind.resources.contains_key(&resource.metadata.id) {
            return Err(StateError::AlreadyExists {
                key: resource.metadata.key(),
            });
        }
        let now = SystemTime::now();
        let mut metadata = resource.metadata;
        metadata.namespace = writer.kind.namespace.clone();
        metadata.type_name = writer.kind.type_name.clone();
        metadata.version = Version(1);
        metadata.phase = Phase::Running;
        metadata.created = now;
        metadata.updated = now;
        let new = Arc::new(RawResource {
            metadata,
            spec: Arc::new(resource.spec),
        });
        writer.commit(Change::Put { new, created: true })?;
        Ok(Version(1))
    }

    /// Replaces spec and labels if `resource.metadata.version` is still the stored
    /// version and the writer (its owner field) owns it. Phase and finalizers are kept.
    pub fn update<T: ResourceSpec>(&self, resource: Resource<T>) -> Result<Version, StateError> {
        let mut core = self.lock();
        let writer = core.writer(T::NAMESPACE, T::TYPE, Some(TypeInfo::of::<T>()));
        let stored = existing(
            writer.kind.resources.get(&resource.metadata.id),
            &resource.metadata.key(),
        )?;
        if stored.metadata.version != resource.metadata.version {
            return Err(StateError::Conflict {
                key: resource.metadata.key(),
                expected: resource.metadata.version,
                actual: stored.metadata.version,
            });
        }
        check_owner(&stored, resource.metadata.owner.as_deref())?;
        let new = successor(
            &stored,
            Arc::new(resource.spec),
            Some(resource.metadata.labels),
        );
        let version = new.metadata.version;
        writer.commit(Change::Put {
            new,
            created: false,
        })?;
        Ok(version)
    }

    /// Creates or updates the resource `id` owned by `owner` (the controllers' write):
    /// a write whose spec equals the stored one is skipped.
    pub fn apply_owned<T: ResourceSpec>(
        &self,
        id: &str,
        owner: Option<&str>,
        spec: T,
    ) -> Result<Applied, StateError> {
        check_id::<T>(id)?;
        let mut core = self.lock();
        let writer = core.writer(T::NAMESPACE, T::TYPE, Some(TypeInfo::of::<T>()));
        let (change, applied) = match writer.kind.resources.get(id) {
            Some(stored) => {
                check_owner(stored, owner)?;
                if stored.spec::<T>().is_ok_and(|old| *old == spec) {
                    return Ok(Applied::Unchanged);
                }
                let new = successor(stored, Arc::new(spec), None);
                (
                    Change::Put {
                        new,
                        created: false,
                    },
                    Applied::Updated,
                )
            }
            None => {
                let mut resource = Resource::new(id, spec);
                resource.metadata.namespace = writer.kind.namespace.clone();
                resource.metadata.type_name = writer.kind.type_name.clone();
                resource.metadata.version = Version(1);
                resource.metadata.owner = owner.map(Arc::from);
                let new = Arc::new(RawResource {
                    metadata: resource.metadata,
                    spec: Arc::new(resource.spec),
                });
                (Change::Put { new, created: true }, Applied::Created)
            }
        };
        writer.commit(change)?;
        Ok(applied)
    }

    /// Marks a resource as tearing down. Returns whether it has no finalizers left
    /// (so it can be destroyed now).
    pub fn teardown<T: ResourceSpec>(
        &self,
        id: &str,
        owner: Option<&str>,
    ) -> Result<bool, StateError> {
        self.teardown_raw(T::NAMESPACE, T::TYPE, id, owner)
    }

    pub(crate) fn teardown_raw(
        &self,
        namespace: &str,
        type_name: &str,
        id: &str,
        owner: Option<&str>,
    ) -> Result<bool, StateError> {
        let mut core = self.lock();
        let (writer, stored) = open_existing(&mut core, namespace, type_name, id)?;
        check_owner(&stored, owner)?;
        let ready = stored.metadata.finalizers.is_empty();
        if stored.metadata.phase == Phase::TearingDown {
            return Ok(ready);
        }
        let mut new = successor(&stored, stored.spec.clone(), None);
        Arc::make_mut(&mut new).metadata.phase = Phase::TearingDown;
        writer.commit(Change::Put {
            new,
            created: false,
        })?;
        Ok(ready)
    }

    /// Removes a resource; refused while finalizers remain.
    pub fn destroy<T: ResourceSpec>(
        &self,
        id: &str,
        owner: Option<&str>,
    ) -> Result<(), StateError> {
        self.destroy_raw(T::NAMESPACE, T::TYPE, id, owner)
    }

    pub(crate) fn destroy_raw(
        &self,
        namespace: &str,
        type_name: &str,
        id: &str,
        owner: Option<&str>,
    ) -> Result<(), StateError> {
        let mut core = self.lock();
        let (writer, stored) = open_existing(&mut core, namespace, type_name, id)?;
        check_owner(&stored, owner)?;
        if !stored.metadata.finalizers.is_empty() {
            return Err(StateError::FinalizersPending {
                key: stored.metadata.key(),
                finalizers: stored.metadata.finalizers.clone(),
            });
        }
        writer.commit(Change::Remove { old: stored })?;
        Ok(())
    }

    /// Adds `finalizer` (idempotent); refused once the resource is tearing down.
    pub fn add_finalizer<T: ResourceSpec>(
        &self,
        id: &str,
        finalizer: &str,
    ) -> Result<(), StateError> {
        self.edit_finalizers(T::NAMESPACE, T::TYPE, id, |meta| {
            if meta.finalizers.iter().any(|f| f == finalizer) {
                return Ok(false);
            }
            if meta.phase == Phase::TearingDown {
                return Err(StateError::TearingDown { key: meta.key() });
            }
            meta.finalizers.push(finalizer.to_owned());
            Ok(true)
        })
    }

    /// Removes `finalizer` (idempotent).
    pub fn remove_finalizer<T: ResourceSpec>(
        &self,
        id: &str,
        finalizer: &str,
    ) -> Result<(), StateError> {
        self.edit_finalizers(T::NAMESPACE, T::TYPE, id, |meta| {
            let before = meta.finalizers.len();
            meta.finalizers.retain(|f| f != finalizer);
            Ok(meta.finalizers.len() != before)
        })
    }

    fn edit_finalizers(
        &self,
        namespace: &str,
        type_name: &str,
        id: &str,
        edit: impl FnOnce(&mut crate::resource::Metadata) -> Result<bool, StateError>,
    ) -> Result<(), StateError> {
        let mut core = self.lock();
        let (writer, stored) = open_existing(&mut core, namespace, type_name, id)?;
        let mut new = successor(&stored, stored.spec.clone(), None);
        if !edit(&mut Arc::make_mut(&mut new).metadata)? {
            return Ok(());
        }
        writer.commit(Change::Put {
            new,
            created: false,
        })?;
        Ok(())
    }

    /// Watches one resource: its current state (if it exists), `Bootstrapped`, then
    /// every change.
    pub fn watch<T: ResourceSpec>(&self, id: &str) -> Result<Watcher, WatchError> {
        self.watch_raw(T::NAMESPACE, T::TYPE, Some(id), None)
    }

    /// Watches every resource of `T`. With `since: None` it starts with a snapshot
    /// (one `Created` per resource, then `Bootstrapped`); with a bookmark it replays
    /// exactly the events after it, so a resumed watcher neither misses nor repeats one.
    pub fn watch_kind<T: ResourceSpec>(
        &self,
        since: Option<Bookmark>,
    ) -> Result<Watcher, WatchError> {
        self.watch_raw(T::NAMESPACE, T::TYPE, None, since)
    }

    /// Watches without knowing the Rust type.
    pub fn watch_raw(
        &self,
        namespace: &str,
        type_name: &str,
        id: Option<&str>,
        since: Option<Bookmark>,
    ) -> Result<Watcher, WatchError> {
        Watcher::start(self.clone(), namespace, type_name, id, since)
    }

    /// Every (namespace, type) the state has seen, with how many resources it holds.
    pub fn kinds(&self) -> Vec<(String, String, usize)> {
        let core = self.lock();
        let mut kinds: Vec<_> = core
            .kinds()
            .map(|k| {
                (
                    k.namespace.to_string(),
                    k.type_name.to_string(),
                    k.resources.len(),
                )
            })
            .collect();
        kinds.sort();
        kinds
    }

    pub(crate) fn type_info(&self, namespace: &str, type_name: &str) -> Option<TypeInfo> {
        self.lock().kind(namespace, type_name).map(|k| k.info)
    }
}

fn key(namespace: &str, type_name: &str, id: &str) -> ResourceKey {
    ResourceKey {
        namespace: Arc::from(namespace),
        type_name: Arc::from(type_name),
        id: Arc::from(id),
    }
}

fn check_id<T: ResourceSpec>(id: &str) -> Result<(), StateError> {
    if id.is_empty() {
        return Err(StateError::EmptyId {
            type_name: T::TYPE.to_owned(),
        });
    }
    Ok(())
}

/// Opens the kind for a write of the resource `id`, which must already be stored.
fn open_existing<'c>(
    core: &'c mut Core,
    namespace: &str,
    type_name: &str,
    id: &str,
) -> Result<(KindWriter<'c>, Arc<RawResource>), StateError> {
    let writer = core.writer(namespace, type_name, None);
    let stored = existing(
        writer.kind.resources.get(id),
        &key(namespace, type_name, id),
    )?;
    Ok((writer, stored))
}

fn existing(
    found: Option<&Arc<RawResource>>,
    key: &ResourceKey,
) -> Result<Arc<RawResource>, StateError> {
    found
        .cloned()
        .ok_or_else(|| StateError::NotFound { key: key.clone() })
}

fn check_owner(stored: &RawResource, writer: Option<&str>) -> Result<(), StateError> {
    if stored.metadata.owner.as_deref() == writer {
        return Ok(());
    }
    Err(StateError::OwnerConflict {
        key: stored.metadata.key(),
        actual: stored.metadata.owner.as_deref().map(str::to_owned),
        writer: writer.map(str::to_owned),
    })
}

/// The next version of `stored` with a new spec (and labels, if given).
fn successor(
    stored: &RawResource,
    spec: AnySpec,
    labels: Option<crate::resource::Labels>,
) -> Arc<RawResource> {
    let mut metadata = stored.metadata.clone();
    metadata.version = metadata.version.next();
    metadata.updated = SystemTime::now();
    if let Some(labels) = labels {
        metadata.labels = labels;
    }
    Arc::new(RawResource { metadata, spec })
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    use super::*;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Led {
        on: bool,
    }
    impl ResourceSpec for Led {
        const TYPE: &'static str = "Leds.test";
    }

    #[test]
    fn apply_owned_creates_updates_and_skips_equal_specs() {
        let state = State::in_memory();
        let start = state.bookmark();
        assert_eq!(
            state
                .apply_owned("status", Some("leds"), Led { on: true })
                .ok(),
            Some(Applied::Created)
        );
        assert_eq!(
            state
                .apply_owned("status", Some("leds"), Led { on: true })
                .ok(),
            Some(Applied::Unchanged)
        );
        assert_eq!(
            state.bookmark(),
            Bookmark(start.0 + 1),
            "an unchanged apply writes nothing"
        );
        assert_eq!(
            state
                .apply_owned("status", Some("leds"), Led { on: false })
                .ok(),
            Some(Applied::Updated)
        );
        let led = state.get::<Led>("status").expect("stored");
        assert_eq!(
            (led.metadata.version, led.metadata.owner.as_deref()),
            (Version(2), Some("leds"))
        );
        let foreign = state.apply_owned("status", Some("intruder"), Led { on: true });
        assert!(
            matches!(foreign, Err(StateError::OwnerConflict { .. })),
            "{foreign:?}"
        );
        let anonymous = state.apply_owned("status", None, Led { on: true });
        assert!(
            matches!(anonymous, Err(StateError::OwnerConflict { .. })),
            "{anonymous:?}"
        );
    }

    #[test]
    fn reading_a_resource_as_another_type_is_a_typed_error() {
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        struct Other;
        impl ResourceSpec for Other {
            const TYPE: &'static str = "Leds.test";
        }
        let state = State::in_memory();
        state
            .create(Resource::new("a", Led { on: true }))
            .expect("created");
        let raw = state.get_raw("default", "Leds.test", "a").expect("stored");
        assert!(matches!(
            raw.spec::<Other>(),
            Err(StateError::TypeMismatch { .. })
        ));
        assert!(raw.spec::<Led>().is_ok_and(|led| led.on));
    }

    #[test]
    fn kinds_report_their_sizes() {
        let state = State::in_memory();
        state
            .create(Resource::new("a", Led { on: true }))
            .expect("created");
        state
            .create(Resource::new("b", Led { on: true }))
            .expect("created");
        assert_eq!(
            state.kinds(),
            [("default".to_owned(), "Leds.test".to_owned(), 2)]
        );
    }
}
