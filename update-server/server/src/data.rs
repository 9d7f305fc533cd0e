//! The data directory, created on first start with nothing else to set up:
//!
//! ```text
//! DIR/fleet.db                 the embedded database (SQLite)
//! DIR/repository/metadata/     the TUF repository served at /repository/
//! DIR/repository/targets/
//! DIR/keys/timestamp.key       the online timestamp key (optional; no other key may be here)
//! DIR/pki/                     server CA, device CA, server certificate (keys 0600)
//! ```

use std::path::{Path, PathBuf};

/// Keys that must stay offline with the release tooling.
const OFFLINE_KEYS: &[&str] = &["targets.key", "snapshot.key"];

/// Why the data directory cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("cannot create {path}")]
    Create {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a directory")]
    NotADirectory { path: PathBuf },
    #[error("{path} is an offline key; the server holds only keys/timestamp.key — move it back to the release tooling")]
    OfflineKey { path: PathBuf },
}

/// The paths inside a data directory.
#[derive(Debug, Clone)]
pub struct DataDir {
    pub root: PathBuf,
}

impl DataDir {
    /// Creates `root` and its layout if missing; refuses offline keys in `keys/`.
    pub fn prepare(root: &Path) -> Result<Self, DataError> {
        let dir = Self { root: root.into() };
        for path in [
            dir.root.clone(),
            dir.repository().join("metadata"),
            dir.repository().join("targets"),
            dir.keys(),
        ] {
            std::fs::create_dir_all(&path).map_err(|source| DataError::Create {
                path: path.clone(),
                source,
            })?;
            if !path.is_dir() {
                return Err(DataError::NotADirectory { path });
            }
        }
        if let Ok(entries) = std::fs::read_dir(dir.keys()) {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if OFFLINE_KEYS.contains(&name.as_str()) || name.starts_with("root-") {
                    return Err(DataError::OfflineKey { path: entry.path() });
                }
            }
        }
        Ok(dir)
    }

    pub fn database(&self) -> PathBuf {
        self.root.join("fleet.db")
    }

    pub fn repository(&self) -> PathBuf {
        self.root.join("repository")
    }

    pub fn keys(&self) -> PathBuf {
        self.root.join("keys")
    }

    /// The server CA, device CA and server certificate ([`crate::pki`]).
    pub fn pki(&self) -> PathBuf {
        self.root.join("pki")
    }

    pub fn timestamp_key(&self) -> PathBuf {
        self.keys().join("timestamp.key")
    }
}
