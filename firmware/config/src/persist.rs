//! The versioned format the daemon stores the config and its history in.
//!
//! Every stored record carries `formatVersion`. A reader refuses a version newer than it knows
//! (after a rollback, the old slot must not misread what a newer slot wrote), and a newer
//! slot writes only versions the committed slot can read until it is itself committed.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::apply::ApplyMode;
use crate::document::Config;
use crate::DecodeError;

/// The format this build writes and the newest it reads.
pub const FORMAT_VERSION: u32 = 1;
/// Largest stored record accepted (a config is bounded by its own limits; history holds a few).
pub const MAX_RECORD_BYTES: usize = 4 * 1024 * 1024;
/// History entries kept.
pub const HISTORY_LEN: usize = 16;

/// Why a stored record could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    #[error("the stored {what} is {bytes} bytes, more than the limit of {limit}")]
    TooLarge {
        what: &'static str,
        bytes: usize,
        limit: usize,
    },
    #[error("the stored {what} is written in format {found}, newer than format {supported} this build reads; it was written by a newer release")]
    NewerFormat {
        what: &'static str,
        found: u32,
        supported: u32,
    },
    #[error("the stored {what} is not valid")]
    Corrupt {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("the {what} could not be encoded")]
    Encode {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("the stored {what} holds a config that does not decode")]
    Config {
        what: &'static str,
        #[source]
        source: DecodeError,
    },
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct VersionOnly {
    format_version: u32,
}

fn check_version(what: &'static str, bytes: &[u8]) -> Result<(), PersistError> {
    if bytes.len() > MAX_RECORD_BYTES {
        return Err(PersistError::TooLarge {
            what,
            bytes: bytes.len(),
            limit: MAX_RECORD_BYTES,
        });
    }
    let v: VersionOnly =
        serde_json::from_slice(bytes).map_err(|source| PersistError::Corrupt { what, source })?;
    if v.format_version > FORMAT_VERSION {
        return Err(PersistError::NewerFormat {
            what,
            found: v.format_version,
            supported: FORMAT_VERSION,
        });
    }
    Ok(())
}

/// The accepted config as stored: its canonical YAML (re-decoded strictly on load).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredConfig {
    pub format_version: u32,
    /// Increases by one with every accepted config.
    pub generation: u64,
    pub yaml: String,
}

impl StoredConfig {
    /// Stores `config` as generation `generation`.
    pub fn new(config: &Config, generation: u64) -> Self {
        StoredConfig {
            format_version: FORMAT_VERSION,
            generation,
            yaml: config.to_yaml(),
        }
    }

    /// Serializes the record.
    pub fn to_bytes(&self) -> Result<Vec<u8>, PersistError> {
        serde_json::to_vec_pretty(self).map_err(|source| PersistError::Encode {
            what: "config",
            source,
        })
    }

    /// Reads a record, refusing newer formats and configs that no longer decode.
    pub fn from_bytes(bytes: &[u8]) -> Result<(StoredConfig, Config), PersistError> {
        const WHAT: &str = "config";
        check_version(WHAT, bytes)?;
        let stored: StoredConfig = serde_json::from_slice(bytes)
            .map_err(|source| PersistError::Corrupt { what: WHAT, source })?;
        let config = crate::decode(&stored.yaml)
            .map_err(|source| PersistError::Config { what: WHAT, source })?;
        Ok((stored, config))
    }
}

/// One past config and how it was applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryEntry {
    pub generation: u64,
    pub mode: ApplyMode,
    /// Seconds since the Unix epoch when it was accepted.
    pub accepted_at: u64,
    pub yaml: String,
}

/// The last [`HISTORY_LEN`] accepted configs, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigHistory {
    pub format_version: u32,
    entries: VecDeque<HistoryEntry>,
}

impl Default for ConfigHistory {
    fn default() -> Self {
        ConfigHistory {
            format_version: FORMAT_VERSION,
            entries: VecDeque::new(),
        }
    }
}

impl ConfigHistory {
    /// Records an entry, dropping the oldest beyond [`HISTORY_LEN`].
    pub fn push(&mut self, entry: HistoryEntry) {
        self.entries.push_back(entry);
        while self.entries.len() > HISTORY_LEN {
            self.entries.pop_front();
        }
    }

    /// The entries, oldest first.
    pub fn entries(&self) -> impl Iterator<Item = &HistoryEntry> {
        self.entries.iter()
    }

    /// Serializes the history.
    pub fn to_bytes(&self) -> Result<Vec<u8>, PersistError> {
        serde_json::to_vec(self).map_err(|source| PersistError::Encode {
            what: "config history",
            source,
        })
    }

    /// Reads a history, refusing newer formats; entries beyond the bound are dropped oldest first.
    pub fn from_bytes(bytes: &[u8]) -> Result<ConfigHistory, PersistError> {
        const WHAT: &str = "config history";
        check_version(WHAT, bytes)?;
        let mut h: ConfigHistory = serde_json::from_slice(bytes)
            .map_err(|source| PersistError::Corrupt { what: WHAT, source })?;
        while h.entries.len() > HISTORY_LEN {
            h.entries.pop_front();
        }
        Ok(h)
    }
}
