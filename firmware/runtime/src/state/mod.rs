//! The state: typed Get/List/Create/Update/Destroy/Teardown over resources, with
//! optimistic versions, finalizers, exclusive outputs, and watches that resume from
//! bookmarks.
//!
//! Layout:
//! - `core`: the index of kinds, each behind its own locks with its history and
//!   broadcast channel; every write commits there (persist first, then memory, then
//!   announce).
//! - `watch`: [`Watcher`], [`WatchEvent`], [`Bookmark`], [`Epoch`].
//!
//! All operations are synchronous and short; only watching awaits. A write to a
//! persistent type waits for the backend (an fsync by default) holding only its
//! kind's writer gate, not the kind's data: a slow disk delays the next writer of that
//! kind, never a reader, a watcher or a writer of another kind.

mod core;
mod watch;

use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use self::core::{lock, Change, Core, Kind};
pub(crate) use self::watch::forbids;
pub use self::watch::{Bookmark, Epoch, WatchEvent, Watcher};
use crate::access::Role;
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
    core: Arc<Core>,
}

impl State {
    /// A state that keeps everything in memory (persistent types too).
    pub fn in_memory() -> Self {
        Self::in_memory_with(StateOptions::default())
    }

    /// An in-memory state with non-default tuning.
    pub fn in_memory_with(options: StateOptions) -> Self {
        State {
            core: Arc::new(Core::new(options, Box::new(MemoryBackend))),
        }
    }

    /// A state whose persistent types live in a [`FileLog`] in `dir`.
    pub fn open_persistent(dir: &Path) -> Result<Self, BackendError> {
        Self::with_backend(Box::new(FileLog::open(dir)?), StateOptions::default())
    }

    /// A state over any backend, loading what it holds. It starts a new [`Epoch`]:
    /// bookmarks handed out before (by an earlier run over the same storage) are
    /// refused with [`WatchError::OtherEpoch`]; the restored resources reach
    /// watchers as the snapshot of a new watch.
    pub fn with_backend(
        mut backend: Box<dyn Backend>,
        options: StateOptions,
    ) -> Result<Self, BackendError> {
        let records = backend.load()?;
        let core = Core::new(options, backend);
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
            core: Arc::new(core),
        })
    }

    pub(crate) fn core(&self) -> &Core {
        &self.core
    }

    /// The bookmark of the newest write.
    pub fn bookmark(&self) -> Bookmark {
        self.core.revision()
    }

    /// This run's epoch (part of every bookmark it hands out).
    pub fn epoch(&self) -> Epoch {
        self.core.epoch()
    }

    /// Runs `read` on the kind under its lock (`None` if the state never saw it).
    pub(crate) fn read_kind<R>(
        &self,
        namespace: &str,
        type_name: &str,
        read: impl FnOnce(Option<&Kind>) -> R,
    ) -> R {
        match self.core.kind(namespace, type_name) {
            Some(cell) => read(Some(&lock(&cell.data))),
            None => read(None),
        }
    }

    /// Runs `build` on the kind (created if missing) under its locks and commits the
    /// change it returns, if any (see [`Core::write`]).
    fn write_kind<R>(
        &self,
        namespace: &str,
        type_name: &str,
        info: Option<TypeInfo>,
        build: impl FnOnce(&mut Kind) -> Result<(Option<Change>, R), StateError>,
    ) -> Result<R, StateError> {
        let cell = self.core.kind_or_insert(namespace, type_name, info);
        self.core.write(&cell, info, build)
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
        self.read_kind(namespace, type_name, |kind| {
            get_in(kind, namespace, type_name, id)
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
        let mut found = self.read_kind(namespace, type_name, |kind| list_in(kind, selector));
        found.sort_unstable_by(|a, b| a.metadata.id.cmp(&b.metadata.id));
        found
    }

    /// Creates a resource; its metadata's owner becomes the owner. Returns its version.
    pub fn create<T: ResourceSpec>(&self, resource: Resource<T>) -> Result<Version, StateError> {
        check_id::<T>(&resource.metadata.id)?;
        self.write_kind(T::NAMESPACE, T::TYPE, Some(TypeInfo::of::<T>()), |kind| {
            let key = resource.metadata.key();
            kind.check_exclusive(&key, resource.metadata.owner.as_deref())?;
            if kind.resources.contains_key(&resource.metadata.id) {
                return Err(StateError::AlreadyExists { key });
            }
            let now = SystemTime::now();
            let mut metadata = resource.metadata;
            metadata.namespace = kind.namespace.clone();
            metadata.type_name = kind.type_name.clone();
            metadata.version = Version(1);
            metadata.phase = Phase::Running;
            metadata.created = now;
            metadata.updated = now;
            let new = Arc::new(RawResource {
                metadata,
                spec: Arc::new(resource.spec),
            });
            Ok((Some(Change::Put { new, created: true }), Version(1)))
        })
    }

    /// Replaces spec and labels if `resource.metadata.version` is still the stored
    /// version and the writer (its owner field) owns it. Phase and finalizers are kept.
    pub fn update<T: ResourceSpec>(&self, resource: Resource<T>) -> Result<Version, StateError> {
        self.write_kind(T::NAMESPACE, T::TYPE, Some(TypeInfo::of::<T>()), |kind| {
            let key = resource.metadata.key();
            kind.check_exclusive(&key, resource.metadata.owner.as_deref())?;
            let stored = existing(kind.resources.get(&resource.metadata.id), &key)?;
            if stored.metadata.version != resource.metadata.version {
                return Err(StateError::Conflict {
                    key,
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
            let change = Change::Put {
                new,
                created: false,
            };
            Ok((Some(change), version))
        })
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
        self.write_kind(T::NAMESPACE, T::TYPE, Some(TypeInfo::of::<T>()), |kind| {
            kind.check_exclusive(&key(&kind.namespace, &kind.type_name, id), owner)?;
            let (change, applied) = match kind.resources.get(id) {
                Some(stored) => {
                    check_owner(stored, owner)?;
                    if stored.spec::<T>().is_ok_and(|old| *old == spec) {
                        return Ok((None, Applied::Unchanged));
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
                    resource.metadata.namespace = kind.namespace.clone();
                    resource.metadata.type_name = kind.type_name.clone();
                    resource.metadata.version = Version(1);
                    resource.metadata.owner = owner.map(Arc::from);
                    let new = Arc::new(RawResource {
                        metadata: resource.metadata,
                        spec: Arc::new(resource.spec),
                    });
                    (Change::Put { new, created: true }, Applied::Created)
                }
            };
            Ok((Some(change), applied))
        })
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
        self.write_kind(namespace, type_name, None, |kind| {
            let key = key(namespace, type_name, id);
            kind.check_exclusive(&key, owner)?;
            let stored = existing(kind.resources.get(id), &key)?;
            check_owner(&stored, owner)?;
            let ready = stored.metadata.finalizers.is_empty();
            if stored.metadata.phase == Phase::TearingDown {
                return Ok((None, ready));
            }
            let mut new = successor(&stored, stored.spec.clone(), None);
            Arc::make_mut(&mut new).metadata.phase = Phase::TearingDown;
            let change = Change::Put {
                new,
                created: false,
            };
            Ok((Some(change), ready))
        })
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
        self.write_kind(namespace, type_name, None, |kind| {
            let key = key(namespace, type_name, id);
            kind.check_exclusive(&key, owner)?;
            let stored = existing(kind.resources.get(id), &key)?;
            check_owner(&stored, owner)?;
            if !stored.metadata.finalizers.is_empty() {
                return Err(StateError::FinalizersPending {
                    key: stored.metadata.key(),
                    finalizers: stored.metadata.finalizers.clone(),
                });
            }
            Ok((Some(Change::Remove { old: stored }), ()))
        })
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

    /// Finalizers are how other controllers hold a resource, so they are not subject to
    /// the exclusive-output check (only to the stored version).
    fn edit_finalizers(
        &self,
        namespace: &str,
        type_name: &str,
        id: &str,
        edit: impl FnOnce(&mut crate::resource::Metadata) -> Result<bool, StateError>,
    ) -> Result<(), StateError> {
        self.write_kind(namespace, type_name, None, |kind| {
            let stored = existing(kind.resources.get(id), &key(namespace, type_name, id))?;
            let mut new = successor(&stored, stored.spec.clone(), None);
            if !edit(&mut Arc::make_mut(&mut new).metadata)? {
                return Ok((None, ()));
            }
            let change = Change::Put {
                new,
                created: false,
            };
            Ok((Some(change), ()))
        })
    }

    /// Reserves a kind for `owner`: from now on only writes by `owner` create,
    /// update, tear down or destroy its resources (finalizers stay open to all).
    /// Fails with the current owner's name if another owner holds it.
    pub(crate) fn claim_exclusive(
        &self,
        namespace: &str,
        type_name: &str,
        owner: &str,
    ) -> Result<(), String> {
        let cell = self.core.kind_or_insert(namespace, type_name, None);
        let mut kind = lock(&cell.data);
        match &kind.exclusive_owner {
            Some(current) if &**current != owner => Err(current.to_string()),
            _ => {
                kind.exclusive_owner = Some(Arc::from(owner));
                Ok(())
            }
        }
    }

    /// Gives up a claim made by [`State::claim_exclusive`] (no-op for another owner).
    pub(crate) fn release_exclusive(&self, namespace: &str, type_name: &str, owner: &str) {
        if let Some(cell) = self.core.kind(namespace, type_name) {
            let mut kind = lock(&cell.data);
            if kind.exclusive_owner.as_deref() == Some(owner) {
                kind.exclusive_owner = None;
            }
        }
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
        Watcher::start(self.clone(), namespace, type_name, id, since, None)
    }

    /// Watches on behalf of a client with `role`: refused at once for a sensitive
    /// kind unless the role is admin, and checked again on every event, so a kind that
    /// turns out to be sensitive later (its type registers after the watch began)
    /// ends the watch with [`WatchError::Forbidden`] instead of showing a resource.
    pub(crate) fn watch_as(
        &self,
        namespace: &str,
        type_name: &str,
        id: Option<&str>,
        since: Option<Bookmark>,
        role: Role,
    ) -> Result<Watcher, WatchError> {
        Watcher::start(self.clone(), namespace, type_name, id, since, Some(role))
    }

    /// Every (namespace, type) the state has seen, with how many resources it holds
    /// (without waiting for a kind that is being written).
    pub fn kinds(&self) -> Vec<(String, String, usize)> {
        let mut kinds: Vec<_> = self
            .core
            .kinds()
            .iter()
            .map(|entry| {
                (
                    entry.namespace.to_string(),
                    entry.type_name.to_string(),
                    entry.len.load(std::sync::atomic::Ordering::SeqCst),
                )
            })
            .collect();
        kinds.sort();
        kinds
    }
}

fn get_in(
    kind: Option<&Kind>,
    namespace: &str,
    type_name: &str,
    id: &str,
) -> Result<Arc<RawResource>, StateError> {
    kind.and_then(|kind| kind.resources.get(id).cloned())
        .ok_or_else(|| StateError::NotFound {
            key: key(namespace, type_name, id),
        })
}

fn list_in(kind: Option<&Kind>, selector: &Selector) -> Vec<Arc<RawResource>> {
    kind.map(|kind| {
        kind.resources
            .values()
            .filter(|raw| selector.matches(&raw.metadata.labels))
            .cloned()
            .collect()
    })
    .unwrap_or_default()
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
            state.bookmark().revision,
            start.revision + 1,
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
