//! The config store: files in the `/var` area's `config/` directory (during a trial, the
//! trial overlay), each written atomically.
//!
//! ```text
//! config.json       StoredConfig: the config in effect and its generation
//! staged.json       StoredConfig: the config that takes effect at the next start
//! try.json          envelope skerry.config-try: the config on try's generation, when it
//!                   reverts, and the StoredConfig it reverts to
//! history.json      ConfigHistory: the last accepted configs (bounded by HISTORY_LEN)
//! generation.json   envelope skerry.config-generation: the last generation handed out
//! ```
//!
//! Every write is a whole-file atomic replace, and the order of writes in each operation
//! (see `engine`) leaves a state the next start can finish or undo after a power cut.
//! A file that cannot be read stops the start with an error naming it: the store is
//! never silently reset.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use skerry_config::persist::{ConfigHistory, StoredConfig, MAX_RECORD_BYTES};
use skerry_config::Config;
use skerry_medium::{Directory, HostDir};
use skerryd_core::{Format, FormatError, VarArea};

/// The config in effect.
pub const CONFIG_FILE: &str = "config.json";
/// The config staged for the next start.
pub const STAGED_FILE: &str = "staged.json";
/// The config on try.
pub const TRY_FILE: &str = "try.json";
/// The history.
pub const HISTORY_FILE: &str = "history.json";
/// The generation counter.
pub const GENERATION_FILE: &str = "generation.json";

/// The format of [`TRY_FILE`].
pub const TRY_FORMAT: Format = skerryd_core::formats::CONFIG_TRY;
/// The format of [`GENERATION_FILE`].
pub const GENERATION_FORMAT: Format = skerryd_core::formats::CONFIG_GENERATION;

/// A config on try as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TrialRecord {
    /// The generation on try.
    pub generation: u64,
    /// When it reverts, in milliseconds since the Unix epoch.
    pub revert_at_ms: u64,
    /// The timeout it was applied with, in milliseconds.
    pub timeout_ms: u64,
    /// The config it reverts to.
    pub previous: StoredConfig,
}

impl TrialRecord {
    /// When it reverts.
    pub fn revert_at(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.revert_at_ms)
    }

    /// The timeout it was applied with.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }
}

/// Milliseconds since the Unix epoch (0 before it).
pub fn unix_ms(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct GenerationRecord {
    last: u64,
}

/// Why the store could not be read or written. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The file could not be read.
    #[error("cannot read the config store file {}", path.display())]
    Read {
        /// Which file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is larger than any record we write.
    #[error("the config store file {} holds {len} bytes, more than the limit of {limit}", path.display())]
    TooLarge {
        /// Which file.
        path: PathBuf,
        /// Its length.
        len: u64,
        /// [`MAX_RECORD_BYTES`].
        limit: usize,
    },
    /// The file does not hold what it should.
    #[error("the config store file {} is unreadable", path.display())]
    Corrupt {
        /// Which file.
        path: PathBuf,
        /// What is wrong with it.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
    /// The file could not be written or removed.
    #[error("cannot write the config store file {}", path.display())]
    Write {
        /// Which file.
        path: PathBuf,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
}

/// What the store holds at start.
#[derive(Debug, Default)]
pub struct Loaded {
    /// The config in effect.
    pub effective: Option<(StoredConfig, Config)>,
    /// The staged config.
    pub staged: Option<(StoredConfig, Config)>,
    /// The config on try and the config it reverts to.
    pub trial: Option<(TrialRecord, Config)>,
    /// The history.
    pub history: ConfigHistory,
    /// The generation counter's value (0 when missing).
    pub last_generation: u64,
}

impl Loaded {
    /// Whether nothing was ever stored.
    pub fn is_empty(&self) -> bool {
        self.effective.is_none()
            && self.staged.is_none()
            && self.trial.is_none()
            && self.history.entries().next().is_none()
            && self.last_generation == 0
    }
}

/// The store's directory and the format versions it writes there.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
    try_version: u32,
    generation_version: u32,
}

impl Store {
    /// The store of this start's `/var` area. On a slot on trial the envelopes are
    /// written at the committed release's versions (the overlay is promoted if the
    /// trial passes, and must stay readable by it until then).
    pub fn in_area(area: &VarArea) -> Store {
        let on_trial = area.trial.is_some();
        Store {
            dir: area.config.clone(),
            try_version: area.floor.version_for(&TRY_FORMAT, on_trial),
            generation_version: area.floor.version_for(&GENERATION_FORMAT, on_trial),
        }
    }

    /// The store in `dir`, writing the newest versions.
    pub fn at(dir: impl Into<PathBuf>) -> Store {
        Store {
            dir: dir.into(),
            try_version: TRY_FORMAT.current,
            generation_version: GENERATION_FORMAT.current,
        }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The path of one of the store's files.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn read(&self, name: &str) -> Result<Option<(PathBuf, Vec<u8>)>, StoreError> {
        let path = self.path(name);
        let read_error = |source| StoreError::Read {
            path: path.clone(),
            source,
        };
        let meta = match std::fs::metadata(&path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(read_error(e)),
        };
        if !meta.is_file() {
            return Err(read_error(std::io::Error::other("not a regular file")));
        }
        if meta.len() > MAX_RECORD_BYTES as u64 {
            return Err(StoreError::TooLarge {
                path,
                len: meta.len(),
                limit: MAX_RECORD_BYTES,
            });
        }
        let bytes = std::fs::read(&path).map_err(read_error)?;
        Ok(Some((path, bytes)))
    }

    fn corrupt(
        path: PathBuf,
    ) -> impl FnOnce(Box<dyn std::error::Error + Send + Sync + 'static>) -> StoreError {
        move |source| StoreError::Corrupt { path, source }
    }

    fn read_config(&self, name: &str) -> Result<Option<(StoredConfig, Config)>, StoreError> {
        let Some((path, bytes)) = self.read(name)? else {
            return Ok(None);
        };
        StoredConfig::from_bytes(&bytes)
            .map(Some)
            .map_err(|e| Self::corrupt(path)(Box::new(e)))
    }

    fn read_trial(&self) -> Result<Option<(TrialRecord, Config)>, StoreError> {
        let Some((path, bytes)) = self.read(TRY_FILE)? else {
            return Ok(None);
        };
        let (_, record): (u32, TrialRecord) = TRY_FORMAT
            .decode_as(&path, &bytes)
            .map_err(|e: FormatError| Self::corrupt(path.clone())(Box::new(e)))?;
        // The embedded record is checked like a file of its own: version, then config.
        let previous = serde_json::to_vec(&record.previous)
            .map_err(|e| Self::corrupt(path.clone())(Box::new(e)))?;
        let (_, config) = StoredConfig::from_bytes(&previous)
            .map_err(|e| Self::corrupt(path.clone())(Box::new(e)))?;
        Ok(Some((record, config)))
    }

    fn read_generation(&self) -> Result<u64, StoreError> {
        let Some((path, bytes)) = self.read(GENERATION_FILE)? else {
            return Ok(0);
        };
        let (_, record): (u32, GenerationRecord) = GENERATION_FORMAT
            .decode_as(&path, &bytes)
            .map_err(|e| Self::corrupt(path.clone())(Box::new(e)))?;
        Ok(record.last)
    }

    fn read_history(&self) -> Result<ConfigHistory, StoreError> {
        let Some((path, bytes)) = self.read(HISTORY_FILE)? else {
            return Ok(ConfigHistory::default());
        };
        ConfigHistory::from_bytes(&bytes).map_err(|e| Self::corrupt(path)(Box::new(e)))
    }

    /// Reads everything, refusing any file that is unreadable.
    pub fn load(&self) -> Result<Loaded, StoreError> {
        Ok(Loaded {
            effective: self.read_config(CONFIG_FILE)?,
            staged: self.read_config(STAGED_FILE)?,
            trial: self.read_trial()?,
            history: self.read_history()?,
            last_generation: self.read_generation()?,
        })
    }

    fn write(&self, name: &str, bytes: &[u8]) -> Result<(), StoreError> {
        let path = self.path(name);
        std::fs::create_dir_all(&self.dir).map_err(|e| StoreError::Write {
            path: path.clone(),
            source: Box::new(e),
        })?;
        skerry_medium::write_atomic(&path, bytes).map_err(|e| StoreError::Write {
            path,
            source: Box::new(e),
        })
    }

    fn encode_error(
        &self,
        name: &str,
    ) -> impl FnOnce(skerry_config::persist::PersistError) -> StoreError {
        let path = self.path(name);
        move |e| StoreError::Write {
            path,
            source: Box::new(e),
        }
    }

    /// Replaces the config in effect.
    pub fn write_config(&self, stored: &StoredConfig) -> Result<(), StoreError> {
        let bytes = stored.to_bytes().map_err(self.encode_error(CONFIG_FILE))?;
        self.write(CONFIG_FILE, &bytes)
    }

    /// Replaces the staged config.
    pub fn write_staged(&self, stored: &StoredConfig) -> Result<(), StoreError> {
        let bytes = stored.to_bytes().map_err(self.encode_error(STAGED_FILE))?;
        self.write(STAGED_FILE, &bytes)
    }

    /// Records the config on try.
    pub fn write_trial(&self, record: &TrialRecord) -> Result<(), StoreError> {
        self.write(TRY_FILE, &TRY_FORMAT.encode(self.try_version, record))
    }

    /// Replaces the history.
    pub fn write_history(&self, history: &ConfigHistory) -> Result<(), StoreError> {
        let bytes = history
            .to_bytes()
            .map_err(self.encode_error(HISTORY_FILE))?;
        self.write(HISTORY_FILE, &bytes)
    }

    /// Records the last generation handed out.
    pub fn write_generation(&self, last: u64) -> Result<(), StoreError> {
        let bytes = GENERATION_FORMAT.encode(self.generation_version, &GenerationRecord { last });
        self.write(GENERATION_FILE, &bytes)
    }

    /// Removes one of the store's files (no error if it is already gone), durably.
    pub fn remove(&self, name: &str) -> Result<(), StoreError> {
        let mut dir = HostDir::new(&self.dir);
        let file = OsStr::new(name);
        if !dir.exists(file) {
            return Ok(());
        }
        dir.remove(file)
            .and_then(|()| dir.sync_dir())
            .map_err(|e| StoreError::Write {
                path: self.path(name),
                source: Box::new(e),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Config {
        skerry_config::decode(text).unwrap()
    }

    const MACHINE: &str =
        "apiVersion: skerry.dev/v1alpha1\nkind: MachineConfig\nhostname: pump-7\n";

    #[test]
    fn an_empty_directory_loads_as_an_empty_store() {
        let dir = tempfile::tempdir().unwrap();
        let loaded = Store::at(dir.path().join("config")).load().unwrap();
        assert!(loaded.is_empty());
    }

    #[test]
    fn every_file_reads_back_what_was_written() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::at(dir.path());
        let c = config(MACHINE);
        let stored = StoredConfig::new(&c, 3);
        store.write_config(&stored).unwrap();
        store.write_staged(&StoredConfig::new(&c, 4)).unwrap();
        let record = TrialRecord {
            generation: 5,
            revert_at_ms: 1234,
            timeout_ms: 60_000,
            previous: stored.clone(),
        };
        store.write_trial(&record).unwrap();
        store.write_generation(5).unwrap();
        let loaded = store.load().unwrap();
        assert_eq!(loaded.effective.unwrap().1, c);
        assert_eq!(loaded.staged.unwrap().0.generation, 4);
        let (trial, previous) = loaded.trial.unwrap();
        assert_eq!(trial, record);
        assert_eq!(previous, c);
        assert_eq!(loaded.last_generation, 5);
        store.remove(TRY_FILE).unwrap();
        store.remove(TRY_FILE).unwrap();
        assert!(store.load().unwrap().trial.is_none());
    }

    #[test]
    fn each_unreadable_file_is_named_in_the_error() {
        for name in [
            CONFIG_FILE,
            STAGED_FILE,
            TRY_FILE,
            HISTORY_FILE,
            GENERATION_FILE,
        ] {
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(dir.path().join(name), b"{ not json").unwrap();
            let err = Store::at(dir.path()).load().unwrap_err();
            assert!(
                matches!(err, StoreError::Corrupt { ref path, .. } if path.ends_with(name)),
                "{name}: {err:?}"
            );
            assert!(err.to_string().contains(name), "{err}");
        }
    }

    #[test]
    fn a_newer_format_is_refused_not_misread() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(CONFIG_FILE),
            br#"{"formatVersion": 9, "generation": 1, "yaml": ""}"#,
        )
        .unwrap();
        let err = Store::at(dir.path()).load().unwrap_err();
        let chain = format!("{:#}", anyhow::Error::from(err));
        assert!(chain.contains("newer"), "{chain}");
    }
}
