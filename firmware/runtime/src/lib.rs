//! Skerry's controller runtime: typed resources in a watchable state, and controllers
//! that declare what they read and write. Every subsystem of `skerryd` is a controller
//! on it. The crate has no OS access of its own; the only I/O is the persistent
//! backend's log file in a directory it is given.
//!
//! Layout:
//! - [`resource`]: metadata, typed specs, selectors.
//! - [`state`]: Get/List/Create/Update/Destroy/Teardown, finalizers, watches with
//!   bookmarks.
//! - [`backend`]: the in-memory and the file-log backends.
//! - [`controller`]: the [`Controller`] trait, the [`Runtime`] that runs controllers,
//!   the generic [`Transform`] controller, status and the dependency graph.
//! - [`access`]: role checks for API clients (sensitive types).
//! - [`error`]: typed errors.

pub mod access;
pub mod backend;
pub mod controller;
pub mod error;
pub mod resource;
pub mod state;

pub use access::{ClientView, Role};
pub use backend::{Backend, Durability, FileLog, MemoryBackend, PersistedResource};
pub use controller::{
    Activity, Controller, ControllerActivity, ControllerError, ControllerStatus, DependencyGraph,
    Input, InputStrength, Output, OutputOwnership, ReconcileContext, Requeue, Runtime,
    RuntimeHandle, RuntimeOptions, Transform,
};
pub use error::{AccessError, BackendError, RegistrationError, StateError, WatchError};
pub use resource::{
    Labels, Metadata, Persistence, Phase, RawResource, Resource, ResourceKey, ResourceSpec,
    Selector, Sensitivity, Version,
};
pub use state::{Applied, Bookmark, Epoch, State, StateOptions, WatchEvent, Watcher};

/// The README's example controller, compiled and run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
