//! Reading and writing the repository on disk.
//!
//! ```text
//! REPO/metadata/1.root.json, 2.root.json, …   every root ever (clients walk the chain)
//! REPO/metadata/N.targets.json, N.snapshot.json  immutable, versioned (consistent snapshot)
//! REPO/metadata/timestamp.json                   the only file that changes
//! REPO/targets/BOARD/VERSION/<sha256>.image.idx  chunk index, content-addressed
//! REPO/targets/BOARD/VERSION/<sha256>.image.pack compressed chunks, content-addressed
//! ```

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use skerry_tuf::{Root, Signed, Snapshot, Targets, Timestamp};

use crate::error::ReleaseError;

/// A repository directory.
#[derive(Debug, Clone)]
pub struct Repository {
    pub dir: PathBuf,
}

/// The repository's current top-level metadata (as written by us, not re-verified).
#[derive(Debug)]
pub struct Current {
    pub root: Signed<Root>,
    pub timestamp: Signed<Timestamp>,
    pub snapshot: Signed<Snapshot>,
    pub targets: Signed<Targets>,
}

impl Repository {
    pub fn new(dir: &Path) -> Self {
        Self { dir: dir.into() }
    }

    pub fn metadata_dir(&self) -> PathBuf {
        self.dir.join("metadata")
    }

    pub fn targets_dir(&self) -> PathBuf {
        self.dir.join("targets")
    }

    /// The newest root.
    pub fn latest_root(&self) -> Result<Signed<Root>, ReleaseError> {
        let first = self.metadata_dir().join("1.root.json");
        if !first.exists() {
            return Err(ReleaseError::NotInitialized {
                repo: self.dir.clone(),
            });
        }
        let mut version = 1;
        while self
            .metadata_dir()
            .join(format!("{}.root.json", version + 1))
            .exists()
        {
            version += 1;
        }
        self.read(&format!("{version}.root.json"))
    }

    /// Root, timestamp, snapshot and targets as currently published.
    pub fn current(&self) -> Result<Current, ReleaseError> {
        let root = self.latest_root()?;
        let timestamp: Signed<Timestamp> = self.read("timestamp.json")?;
        let snap_version = version_of(&timestamp.signed.meta, "snapshot.json", &self.dir)?;
        let snapshot: Signed<Snapshot> = self.read(&format!("{snap_version}.snapshot.json"))?;
        let targets_version = version_of(&snapshot.signed.meta, "targets.json", &self.dir)?;
        let targets: Signed<Targets> = self.read(&format!("{targets_version}.targets.json"))?;
        Ok(Current {
            root,
            timestamp,
            snapshot,
            targets,
        })
    }

    fn read<T: DeserializeOwned>(&self, name: &str) -> Result<T, ReleaseError> {
        let path = self.metadata_dir().join(name);
        let bytes = std::fs::read(&path).map_err(ReleaseError::io(&path))?;
        serde_json::from_slice(&bytes).map_err(|e| ReleaseError::Damaged {
            path,
            reason: e.to_string(),
        })
    }

    /// Writes an immutable metadata file; refuses to replace one.
    pub fn write_new_metadata(&self, name: &str, bytes: &[u8]) -> Result<(), ReleaseError> {
        let path = self.metadata_dir().join(name);
        if path.exists() {
            return Err(ReleaseError::Exists { path });
        }
        write_atomic(&path, bytes)
    }
}

fn version_of(
    meta: &std::collections::BTreeMap<String, skerry_tuf::MetaFile>,
    file: &str,
    repo: &Path,
) -> Result<u64, ReleaseError> {
    meta.get(file)
        .map(|m| m.version)
        .ok_or_else(|| ReleaseError::Damaged {
            path: repo.join("metadata"),
            reason: format!("{file} is not listed"),
        })
}

/// Writes `bytes` to `path` atomically (temp file beside it, fsync, rename, fsync the
/// directory: `skerry_medium::write_atomic`), creating the directory first.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ReleaseError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(ReleaseError::io(dir))?;
    skerry_medium::write_atomic(path, bytes)
        .map_err(|e| ReleaseError::io(e.path().to_owned())(e.into_io()))
}

/// The temporary name used while `path` is being written.
pub fn tmp_name(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}
