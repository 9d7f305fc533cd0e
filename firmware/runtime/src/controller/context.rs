//! [`ReconcileContext`]: a controller's view of the state during one reconcile.
//!
//! Reads are limited to declared inputs and outputs, writes to declared outputs (with
//! the controller as owner), finalizers to strong inputs. Outputs written in this
//! reconcile are remembered so [`ReconcileContext::cleanup_untouched`] can destroy the
//! ones the controller stopped producing.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use super::{Input, InputStrength, Output};
use crate::error::{AccessError, StateError};
use crate::resource::{Resource, ResourceKey, ResourceSpec, Selector};
use crate::state::{Applied, State};

/// How a destroy requested by a controller went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Teardown {
    /// The resource is gone (or never existed).
    Done,
    /// It is tearing down and waits for finalizers; the runtime destroys it once they
    /// are released and then runs a full reconcile.
    Pending,
}

/// Pending teardowns of one controller, shared with its runner.
pub(crate) type PendingTeardowns = Arc<Mutex<HashSet<ResourceKey>>>;

/// Starts watching a pending teardown until its finalizers are released.
pub(crate) type ReleaseWatch = Arc<dyn Fn(ResourceKey) + Send + Sync>;

/// A controller's access to the state during one reconcile.
pub struct ReconcileContext {
    state: State,
    controller: Arc<str>,
    inputs: Arc<[Input]>,
    outputs: Arc<[Output]>,
    changed: Option<HashMap<&'static str, BTreeSet<Arc<str>>>>,
    touched: HashSet<(&'static str, Arc<str>)>,
    pending: PendingTeardowns,
    watch_release: ReleaseWatch,
}

impl std::fmt::Debug for ReconcileContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReconcileContext")
            .field("controller", &self.controller)
            .field("changed", &self.changed)
            .field("touched", &self.touched)
            .finish_non_exhaustive()
    }
}

impl ReconcileContext {
    pub(crate) fn new(
        state: State,
        controller: Arc<str>,
        inputs: Arc<[Input]>,
        outputs: Arc<[Output]>,
        changed: Option<HashMap<&'static str, BTreeSet<Arc<str>>>>,
        pending: PendingTeardowns,
        watch_release: ReleaseWatch,
    ) -> Self {
        ReconcileContext {
            state,
            controller,
            inputs,
            outputs,
            changed,
            touched: HashSet::new(),
            pending,
            watch_release,
        }
    }

    /// The controller's name (also its owner and finalizer name).
    pub fn controller(&self) -> &str {
        &self.controller
    }

    /// Whether this run must look at everything (first run, restart, timer, trigger).
    pub fn is_full_resync(&self) -> bool {
        self.changed.is_none()
    }

    /// Ids of `T` resources that changed since the last run, in id order; `None` when
    /// this is a full resync.
    pub fn changed<T: ResourceSpec>(&self) -> Option<Vec<Arc<str>>> {
        let changed = self.changed.as_ref()?;
        Some(
            changed
                .get(T::TYPE)
                .map(|ids| ids.iter().cloned().collect())
                .unwrap_or_default(),
        )
    }

    /// The declared input `T`, in `T`'s own namespace: a declaration of the same type
    /// name in another namespace does not cover it.
    fn input<T: ResourceSpec>(&self) -> Option<&Input> {
        self.inputs
            .iter()
            .find(|i| i.type_name == T::TYPE && i.namespace == T::NAMESPACE)
    }

    /// The declared output `T`, in `T`'s own namespace.
    fn output<T: ResourceSpec>(&self) -> Option<&Output> {
        self.outputs
            .iter()
            .find(|o| o.type_name == T::TYPE && o.namespace == T::NAMESPACE)
    }

    fn may_read<T: ResourceSpec>(&self) -> Result<(), AccessError> {
        if self.input::<T>().is_some() || self.output::<T>().is_some() {
            return Ok(());
        }
        Err(AccessError::UndeclaredInput {
            controller: self.controller.to_string(),
            type_name: T::TYPE,
        })
    }

    fn may_write<T: ResourceSpec>(&self) -> Result<(), AccessError> {
        if self.output::<T>().is_some() {
            return Ok(());
        }
        Err(AccessError::UndeclaredOutput {
            controller: self.controller.to_string(),
            type_name: T::TYPE,
        })
    }

    fn may_finalize<T: ResourceSpec>(&self) -> Result<(), AccessError> {
        match self.input::<T>() {
            Some(input) if input.strength == InputStrength::Strong => Ok(()),
            Some(_) => Err(AccessError::WeakInput {
                controller: self.controller.to_string(),
                type_name: T::TYPE,
            }),
            None => Err(AccessError::UndeclaredInput {
                controller: self.controller.to_string(),
                type_name: T::TYPE,
            }),
        }
    }

    /// Reads one resource of a declared input or output; `None` if it does not exist.
    pub fn get<T: ResourceSpec>(&self, id: &str) -> Result<Option<Resource<T>>, AccessError> {
        self.may_read::<T>()?;
        match self.state.get::<T>(id) {
            Ok(resource) => Ok(Some(resource)),
            Err(StateError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Lists resources of a declared input or output.
    pub fn list<T: ResourceSpec>(
        &self,
        selector: &Selector,
    ) -> Result<Vec<Resource<T>>, AccessError> {
        self.may_read::<T>()?;
        Ok(self.state.list::<T>(selector)?)
    }

    /// Creates or updates output `id` with `spec`, owned by this controller. Writing
    /// the spec it already has writes nothing.
    pub fn apply<T: ResourceSpec>(&mut self, id: &str, spec: T) -> Result<Applied, AccessError> {
        self.may_write::<T>()?;
        let applied = self.state.apply_owned(id, Some(&self.controller), spec)?;
        self.touched.insert((T::TYPE, Arc::from(id)));
        Ok(applied)
    }

    /// Destroys output `id`: at once if no finalizers hold it, else it tears down and
    /// the runtime destroys it when they are released.
    pub fn destroy<T: ResourceSpec>(&mut self, id: &str) -> Result<Teardown, AccessError> {
        self.may_write::<T>()?;
        let owner = Some(&*self.controller);
        let ready = match self.state.teardown_raw(T::NAMESPACE, T::TYPE, id, owner) {
            Ok(ready) => ready,
            Err(StateError::NotFound { .. }) => return Ok(Teardown::Done),
            Err(e) => return Err(e.into()),
        };
        if ready {
            match self.state.destroy_raw(T::NAMESPACE, T::TYPE, id, owner) {
                Ok(()) | Err(StateError::NotFound { .. }) => return Ok(Teardown::Done),
                Err(StateError::FinalizersPending { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let key = ResourceKey {
            namespace: Arc::from(T::NAMESPACE),
            type_name: Arc::from(T::TYPE),
            id: Arc::from(id),
        };
        let new = self
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key.clone());
        if new {
            (self.watch_release)(key);
        }
        Ok(Teardown::Pending)
    }

    /// Destroys every `T` this controller owns that it did not apply in this
    /// reconcile: call it at the end of a run that produced its full output set.
    /// Returns how many were destroyed or put into teardown.
    pub fn cleanup_untouched<T: ResourceSpec>(&mut self) -> Result<usize, AccessError> {
        self.may_write::<T>()?;
        let stale: Vec<Arc<str>> = self
            .state
            .list_raw(T::NAMESPACE, T::TYPE, &Selector::all())
            .into_iter()
            .filter(|r| r.metadata.owner.as_deref() == Some(&*self.controller))
            .map(|r| r.metadata.id.clone())
            .filter(|id| !self.touched.contains(&(T::TYPE, id.clone())))
            .collect();
        for id in &stale {
            self.destroy::<T>(id)?;
        }
        Ok(stale.len())
    }

    /// Holds input `id` with this controller's finalizer (strong inputs only).
    pub fn add_finalizer<T: ResourceSpec>(&mut self, id: &str) -> Result<(), AccessError> {
        self.may_finalize::<T>()?;
        Ok(self.state.add_finalizer::<T>(id, &self.controller)?)
    }

    /// Releases this controller's finalizer on input `id`.
    pub fn remove_finalizer<T: ResourceSpec>(&mut self, id: &str) -> Result<(), AccessError> {
        self.may_finalize::<T>()?;
        match self.state.remove_finalizer::<T>(id, &self.controller) {
            Ok(()) | Err(StateError::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}
