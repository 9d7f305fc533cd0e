//! Where persistent types are kept across reboots.
//!
//! The state's in-memory index serves every read; a backend only has to load what it
//! holds at start-up and durably record each change of a persistent type before the
//! write returns. [`MemoryBackend`] records nothing (everything is ephemeral);
//! [`FileLog`] is an append-only log with per-record CRCs and atomic compaction.

mod file_log;

use std::fmt;

use serde::{Deserialize, Serialize};

pub use self::file_log::{Durability, FileLog, Recovery};
use crate::error::BackendError;
use crate::resource::{Metadata, ResourceKey, Sensitivity};

/// A persistent resource as a backend stores it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PersistedResource {
    /// Metadata.
    pub metadata: Metadata,
    /// The type's sensitivity, so that access checks hold before the Rust type is
    /// known again after a reboot.
    pub sensitivity: Sensitivity,
    /// The spec as JSON.
    pub spec: serde_json::Value,
}

/// Durable storage for persistent types.
pub trait Backend: Send + fmt::Debug {
    /// Everything stored, read once when the state opens.
    fn load(&mut self) -> Result<Vec<PersistedResource>, BackendError>;
    /// Records the new state of a resource; durable when it returns.
    fn put(&mut self, record: &PersistedResource) -> Result<(), BackendError>;
    /// Records that a resource was destroyed; durable when it returns.
    fn remove(&mut self, key: &ResourceKey) -> Result<(), BackendError>;
}

/// Keeps nothing: a state over it loses everything at exit.
#[derive(Debug, Clone, Copy, Default)]
pub struct MemoryBackend;

impl Backend for MemoryBackend {
    fn load(&mut self) -> Result<Vec<PersistedResource>, BackendError> {
        Ok(Vec::new())
    }

    fn put(&mut self, _record: &PersistedResource) -> Result<(), BackendError> {
        Ok(())
    }

    fn remove(&mut self, _key: &ResourceKey) -> Result<(), BackendError> {
        Ok(())
    }
}
