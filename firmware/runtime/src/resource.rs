//! Resources: metadata every resource carries, plus a typed spec.
//!
//! A resource type is a Rust type implementing [`ResourceSpec`]: its `TYPE` name, the
//! namespace its resources live in, whether only admins may read it and whether it
//! survives a reboot. The state stores specs type-erased ([`RawResource`]); typed code
//! reads them back as [`Resource<T>`].

use std::any::Any;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::StateError;

/// Who may read resources of a type through the device API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Sensitivity {
    /// Every authenticated role may read it.
    Public,
    /// Only admins may read it (keys, tokens, secrets in config).
    Sensitive,
}

/// Whether resources of a type survive a reboot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Persistence {
    /// Lives in memory only; rebuilt by controllers after boot.
    Ephemeral,
    /// Written to the persistent backend before a write returns.
    Persistent,
}

/// A resource type: a serde spec plus static facts about the type.
pub trait ResourceSpec:
    Serialize + DeserializeOwned + Clone + PartialEq + fmt::Debug + Send + Sync + 'static
{
    /// The type's name, unique in the runtime (e.g. `"MachineConfigs.config.skerry.dev"`).
    const TYPE: &'static str;
    /// The namespace its resources live in.
    const NAMESPACE: &'static str = "default";
    /// Who may read it through the API.
    const SENSITIVITY: Sensitivity = Sensitivity::Public;
    /// Whether it survives reboots.
    const PERSISTENCE: Persistence = Persistence::Ephemeral;
}

/// A resource's version: bumped by every write, used for optimistic concurrency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Version(pub u64);

impl Version {
    /// The version a resource has before its first write.
    pub const UNSET: Version = Version(0);

    pub(crate) fn next(self) -> Version {
        Version(self.0 + 1)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Lifecycle phase of a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Phase {
    /// Normal life.
    Running,
    /// Its owner wants it gone; holders of finalizers clean up and release them.
    TearingDown,
}

/// The full name of a resource.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ResourceKey {
    /// Namespace.
    pub namespace: Arc<str>,
    /// Type name.
    pub type_name: Arc<str>,
    /// Id within the namespace and type.
    pub id: Arc<str>,
}

impl fmt::Display for ResourceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.namespace, self.type_name, self.id)
    }
}

/// Labels: free-form key/value pairs that selectors match on.
pub type Labels = BTreeMap<String, String>;

/// Metadata every resource carries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metadata {
    /// Namespace.
    pub namespace: Arc<str>,
    /// Type name.
    pub type_name: Arc<str>,
    /// Id.
    pub id: Arc<str>,
    /// Version; the state sets it on every write.
    pub version: Version,
    /// The controller that owns it, or `None` for resources written by users.
    pub owner: Option<Arc<str>>,
    /// Labels.
    pub labels: Labels,
    /// Lifecycle phase.
    pub phase: Phase,
    /// Names of whoever must release the resource before it can be destroyed.
    pub finalizers: Vec<String>,
    /// When it was created.
    pub created: SystemTime,
    /// When it was last written.
    pub updated: SystemTime,
}

impl Metadata {
    /// The resource's key.
    pub fn key(&self) -> ResourceKey {
        ResourceKey {
            namespace: self.namespace.clone(),
            type_name: self.type_name.clone(),
            id: self.id.clone(),
        }
    }
}

/// A typed resource: metadata plus spec.
#[derive(Debug, Clone, PartialEq)]
pub struct Resource<T> {
    /// Metadata.
    pub metadata: Metadata,
    /// Spec.
    pub spec: T,
}

impl<T: ResourceSpec> Resource<T> {
    /// A new resource in `T`'s namespace, not yet stored.
    pub fn new(id: impl AsRef<str>, spec: T) -> Self {
        let now = SystemTime::now();
        Resource {
            metadata: Metadata {
                namespace: Arc::from(T::NAMESPACE),
                type_name: Arc::from(T::TYPE),
                id: Arc::from(id.as_ref()),
                version: Version::UNSET,
                owner: None,
                labels: Labels::new(),
                phase: Phase::Running,
                finalizers: Vec::new(),
                created: now,
                updated: now,
            },
            spec,
        }
    }

    /// Sets a label.
    pub fn with_label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.labels.insert(key.into(), value.into());
        self
    }

    /// Sets the owner.
    pub fn with_owner(mut self, owner: impl AsRef<str>) -> Self {
        self.metadata.owner = Some(Arc::from(owner.as_ref()));
        self
    }
}

/// A spec read back from disk whose Rust type has not been seen yet in this process;
/// typed reads deserialize it.
#[derive(Debug, Clone)]
pub(crate) struct LoadedSpec(pub serde_json::Value);

/// A type-erased spec.
pub(crate) type AnySpec = Arc<dyn Any + Send + Sync>;

/// A stored resource with its spec type-erased, as the state and watchers hold it.
#[derive(Clone)]
pub struct RawResource {
    /// Metadata.
    pub metadata: Metadata,
    pub(crate) spec: AnySpec,
}

impl fmt::Debug for RawResource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawResource")
            .field("metadata", &self.metadata)
            .finish_non_exhaustive()
    }
}

impl RawResource {
    /// The spec as `T`, or an error naming the resource if it is of another type.
    pub fn spec<T: ResourceSpec>(&self) -> Result<Arc<T>, StateError> {
        if let Ok(typed) = Arc::clone(&self.spec).downcast::<T>() {
            return Ok(typed);
        }
        if let Some(loaded) = self.spec.downcast_ref::<LoadedSpec>() {
            return serde_json::from_value::<T>(loaded.0.clone())
                .map(Arc::new)
                .map_err(|source| StateError::SpecDecode {
                    key: self.metadata.key(),
                    source,
                });
        }
        Err(StateError::TypeMismatch {
            key: self.metadata.key(),
            expected: T::TYPE,
        })
    }

    /// A typed copy.
    pub fn typed<T: ResourceSpec>(&self) -> Result<Resource<T>, StateError> {
        let spec = self.spec::<T>()?;
        Ok(Resource {
            metadata: self.metadata.clone(),
            spec: Arc::unwrap_or_clone(spec),
        })
    }
}

/// Selects resources by their labels: every term must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selector {
    terms: Vec<SelectorTerm>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum SelectorTerm {
    Equals(String, String),
    NotEquals(String, String),
    Exists(String),
    Absent(String),
}

impl Selector {
    /// Matches everything.
    pub fn all() -> Self {
        Selector::default()
    }

    /// Label `key` equals `value`.
    pub fn equals(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.terms
            .push(SelectorTerm::Equals(key.into(), value.into()));
        self
    }

    /// Label `key` is absent or differs from `value`.
    pub fn not_equals(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.terms
            .push(SelectorTerm::NotEquals(key.into(), value.into()));
        self
    }

    /// Label `key` is set.
    pub fn exists(mut self, key: impl Into<String>) -> Self {
        self.terms.push(SelectorTerm::Exists(key.into()));
        self
    }

    /// Label `key` is not set.
    pub fn absent(mut self, key: impl Into<String>) -> Self {
        self.terms.push(SelectorTerm::Absent(key.into()));
        self
    }

    /// Whether `labels` satisfy every term.
    pub fn matches(&self, labels: &Labels) -> bool {
        self.terms.iter().all(|term| match term {
            SelectorTerm::Equals(k, v) => labels.get(k) == Some(v),
            SelectorTerm::NotEquals(k, v) => labels.get(k) != Some(v),
            SelectorTerm::Exists(k) => labels.contains_key(k),
            SelectorTerm::Absent(k) => !labels.contains_key(k),
        })
    }
}

/// Facts about a type the type-erased state needs.
#[derive(Clone, Copy)]
pub(crate) struct TypeInfo {
    pub sensitivity: Sensitivity,
    pub persistence: Persistence,
    /// Serializes a spec of this type; `None` until the Rust type registered itself
    /// (resources loaded from disk carry their JSON).
    pub to_json: fn(&AnySpec) -> Result<serde_json::Value, String>,
    /// Whether this info came from the Rust type rather than from disk.
    pub typed: bool,
}

impl fmt::Debug for TypeInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TypeInfo")
            .field("sensitivity", &self.sensitivity)
            .field("persistence", &self.persistence)
            .field("typed", &self.typed)
            .finish()
    }
}

impl TypeInfo {
    pub(crate) fn of<T: ResourceSpec>() -> Self {
        TypeInfo {
            sensitivity: T::SENSITIVITY,
            persistence: T::PERSISTENCE,
            to_json: typed_to_json::<T>,
            typed: true,
        }
    }

    pub(crate) fn loaded(sensitivity: Sensitivity) -> Self {
        TypeInfo {
            sensitivity,
            persistence: Persistence::Persistent,
            to_json: loaded_to_json,
            typed: false,
        }
    }
}

fn typed_to_json<T: ResourceSpec>(spec: &AnySpec) -> Result<serde_json::Value, String> {
    if let Some(typed) = spec.downcast_ref::<T>() {
        return serde_json::to_value(typed).map_err(|e| e.to_string());
    }
    loaded_to_json(spec)
}

fn loaded_to_json(spec: &AnySpec) -> Result<serde_json::Value, String> {
    spec.downcast_ref::<LoadedSpec>()
        .map(|loaded| loaded.0.clone())
        .ok_or_else(|| "spec is of an unregistered Rust type".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selector_terms_all_must_hold() {
        let mut labels = Labels::new();
        labels.insert("role".into(), "edge".into());
        labels.insert("zone".into(), "a".into());
        assert!(Selector::all().matches(&labels));
        assert!(Selector::all().equals("role", "edge").matches(&labels));
        assert!(!Selector::all().equals("role", "core").matches(&labels));
        assert!(Selector::all().not_equals("role", "core").matches(&labels));
        assert!(Selector::all()
            .exists("zone")
            .absent("rack")
            .matches(&labels));
        assert!(!Selector::all()
            .equals("role", "edge")
            .absent("zone")
            .matches(&labels));
    }
}
