//! The [`BootStore`] trait: where a backend persists the [`BootState`].

use std::path::PathBuf;

use crate::state::{BootError, BootState};

/// A place a bootloader reads its A/B state from (an environment block, partition
/// attributes, a config file). Backends translate; [`BootState`] decides. What the
/// bootloader itself does at power-on is no part of a store: see [`crate::sim`].
pub trait BootStore {
    /// Reads the persisted state. Fails if no valid copy exists.
    fn load(&self) -> Result<BootState, StoreError>;

    /// Replaces the persisted state atomically: after a power cut at any point, `load`
    /// returns either the old or the new state.
    fn commit(&mut self, state: &BootState) -> Result<(), StoreError>;

    /// The most boot attempts this bootloader can count for a slot on trial.
    fn max_tries(&self) -> u8;
}

/// Why a store could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot access {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is not a valid {format}: {reason}", path.display())]
    Corrupt {
        path: PathBuf,
        format: &'static str,
        reason: String,
    },
    #[error("{} holds no valid copy of the boot state", path.display())]
    NoValidCopy { path: PathBuf },
    #[error("{} cannot hold this state: {reason}", path.display())]
    Unsupported { path: PathBuf, reason: String },
    #[error(transparent)]
    State(#[from] BootError),
}
