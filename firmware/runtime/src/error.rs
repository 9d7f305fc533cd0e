//! Typed errors of the state, its backends, watches and controller registration.

use std::path::PathBuf;

use crate::resource::{ResourceKey, Version};
use crate::state::{Bookmark, Epoch};

/// Why a state operation failed. Nothing was changed when one of these is returned.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("resource {key} does not exist")]
    NotFound { key: ResourceKey },
    #[error("resource {key} already exists")]
    AlreadyExists { key: ResourceKey },
    #[error(
        "resource {key} is at version {actual}, the write expected {expected}: re-read and retry"
    )]
    Conflict {
        key: ResourceKey,
        expected: Version,
        actual: Version,
    },
    #[error("resource {key} is owned by {actual:?}, the write came from {writer:?}")]
    OwnerConflict {
        key: ResourceKey,
        actual: Option<String>,
        writer: Option<String>,
    },
    #[error("resource {key} is in a kind that controller {owner} outputs exclusively; the write came from {writer:?}")]
    ExclusiveOutput {
        key: ResourceKey,
        owner: String,
        writer: Option<String>,
    },
    #[error("resource {key} still has finalizers {finalizers:?}; tear it down and wait for them to be released")]
    FinalizersPending {
        key: ResourceKey,
        finalizers: Vec<String>,
    },
    #[error("resource {key} is tearing down; no new finalizers can be added")]
    TearingDown { key: ResourceKey },
    #[error("resource {key} is not of type {expected}")]
    TypeMismatch {
        key: ResourceKey,
        expected: &'static str,
    },
    #[error("resource {key} has a spec that does not decode as its type")]
    SpecDecode {
        key: ResourceKey,
        #[source]
        source: serde_json::Error,
    },
    #[error("resource {key} has a spec that cannot be serialized: {reason}")]
    SpecEncode { key: ResourceKey, reason: String },
    #[error("resource id must be non-empty, got one for type {type_name}")]
    EmptyId { type_name: String },
    #[error("the persistent backend failed writing {key}")]
    Backend {
        key: ResourceKey,
        #[source]
        source: BackendError,
    },
}

/// Why a persistent backend could not be opened or written.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("I/O on {} failed", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the state log's storage failed")]
    Medium {
        #[source]
        source: skerry_medium::MediumError,
    },
    #[error("{} is not a Skerry state log (bad header)", path.display())]
    BadHeader { path: PathBuf },
    #[error("{} is corrupt in the middle: the record at offset {offset} fails its check but a valid record follows at offset {next_valid}, so this is not a torn last write; nothing was dropped. Keep a copy of the file for inspection, then move it aside to start from an empty state", path.display())]
    Corrupt {
        path: PathBuf,
        offset: u64,
        next_valid: u64,
    },
    #[error("{} refuses writes: {reason}; reopen the state to recover", path.display())]
    Poisoned { path: PathBuf, reason: &'static str },
    #[error("record at offset {offset} in {} does not decode", path.display())]
    BadRecord {
        path: PathBuf,
        offset: u64,
        #[source]
        source: serde_json::Error,
    },
    #[error("record for {key} cannot be encoded")]
    Encode {
        key: ResourceKey,
        #[source]
        source: serde_json::Error,
    },
}

/// Why a watch stopped.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WatchError {
    #[error("bookmark {bookmark} is older than the retained history (oldest resumable is {oldest}); watch again with a snapshot")]
    Expired {
        bookmark: Bookmark,
        oldest: Bookmark,
    },
    #[error(
        "bookmark {bookmark} is newer than the state ({current}); it comes from another state"
    )]
    FromTheFuture {
        bookmark: Bookmark,
        current: Bookmark,
    },
    #[error("bookmark {bookmark} is from another run of the state (epoch {}), this run is epoch {epoch}: its history is gone (the state restarted); watch again with a snapshot", bookmark.epoch)]
    OtherEpoch { bookmark: Bookmark, epoch: Epoch },
    #[error("role {role:?} may not watch sensitive type {type_name}; the watch has ended")]
    Forbidden {
        role: crate::access::Role,
        type_name: String,
    },
    #[error("the state was dropped")]
    Closed,
}

/// Why a controller could not be registered.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RegistrationError {
    #[error("a controller named {name} is already registered")]
    DuplicateName { name: String },
    #[error("controller {controller} declares type {type_name} as an exclusive output, but {existing} already outputs it")]
    ExclusiveConflict {
        controller: String,
        type_name: String,
        existing: String,
    },
    #[error("controller {controller} declares type {type_name} as a shared output, but {existing} owns it exclusively")]
    SharedOnExclusive {
        controller: String,
        type_name: String,
        existing: String,
    },
    #[error("controller {controller} declares type {type_name} as both input and output")]
    InputIsOutput {
        controller: String,
        type_name: String,
    },
}

/// Why a controller's access to the state was refused.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    #[error(
        "controller {controller} did not declare {type_name} as an output, so it may not write it"
    )]
    UndeclaredOutput {
        controller: String,
        type_name: &'static str,
    },
    #[error("controller {controller} did not declare {type_name} as an input or output, so it may not read it")]
    UndeclaredInput {
        controller: String,
        type_name: &'static str,
    },
    #[error("controller {controller} holds {type_name} as a weak input; only strong inputs take finalizers")]
    WeakInput {
        controller: String,
        type_name: &'static str,
    },
    #[error("role {role:?} may not read sensitive type {type_name}")]
    Forbidden {
        role: crate::access::Role,
        type_name: String,
    },
    #[error("cannot watch {type_name}")]
    Watch {
        type_name: String,
        #[source]
        source: WatchError,
    },
    #[error(transparent)]
    State(#[from] StateError),
}
