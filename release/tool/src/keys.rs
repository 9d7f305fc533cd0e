//! The key directory: one hex ed25519 seed per file, mode 0600.
//!
//! `root-1.key … root-N.key`, `targets.key`, `snapshot.key`, `timestamp.key`.

use std::path::{Path, PathBuf};

use skerry_tuf::SecretKey;

use crate::error::ReleaseError;

/// All keys of a repository's four roles.
#[derive(Debug)]
pub struct KeySet {
    pub dir: PathBuf,
    pub root: Vec<SecretKey>,
    pub targets: SecretKey,
    pub snapshot: SecretKey,
    pub timestamp: SecretKey,
}

impl KeySet {
    /// Creates `dir` with `root_keys` root keys and one key for each other role.
    /// Refuses a directory that already holds keys.
    pub fn generate(dir: &Path, root_keys: usize) -> Result<Self, ReleaseError> {
        if root_keys == 0 {
            return Err(ReleaseError::MissingKey {
                dir: dir.into(),
                what: "root key (ask for at least one)".into(),
            });
        }
        std::fs::create_dir_all(dir).map_err(ReleaseError::io(dir))?;
        let mut root = Vec::new();
        for i in 1..=root_keys {
            let key = SecretKey::generate()?;
            save_new(&key, &dir.join(format!("root-{i}.key")))?;
            root.push(key);
        }
        let role = |name: &str| -> Result<SecretKey, ReleaseError> {
            let key = SecretKey::generate()?;
            save_new(&key, &dir.join(format!("{name}.key")))?;
            Ok(key)
        };
        Ok(Self {
            dir: dir.into(),
            root,
            targets: role("targets")?,
            snapshot: role("snapshot")?,
            timestamp: role("timestamp")?,
        })
    }

    /// Loads a key directory. Root keys may be absent (they are kept offline); commands
    /// that sign root call [`KeySet::require_root`].
    pub fn load(dir: &Path) -> Result<Self, ReleaseError> {
        let mut root = Vec::new();
        for i in 1.. {
            let path = dir.join(format!("root-{i}.key"));
            if !path.exists() {
                break;
            }
            root.push(SecretKey::load(&path)?);
        }
        let role = |name: &str| -> Result<SecretKey, ReleaseError> {
            let path = dir.join(format!("{name}.key"));
            if !path.exists() {
                return Err(ReleaseError::MissingKey {
                    dir: dir.into(),
                    what: format!("{name}.key"),
                });
            }
            Ok(SecretKey::load(&path)?)
        };
        Ok(Self {
            dir: dir.into(),
            root,
            targets: role("targets")?,
            snapshot: role("snapshot")?,
            timestamp: role("timestamp")?,
        })
    }

    /// The root keys as references, for signing; fails if there are none.
    pub fn require_root(&self) -> Result<Vec<&SecretKey>, ReleaseError> {
        if self.root.is_empty() {
            return Err(ReleaseError::MissingKey {
                dir: self.dir.clone(),
                what: "root-1.key".into(),
            });
        }
        Ok(self.root.iter().collect())
    }
}

fn save_new(key: &SecretKey, path: &Path) -> Result<(), ReleaseError> {
    if path.exists() {
        return Err(ReleaseError::Exists { path: path.into() });
    }
    key.save(path)?;
    Ok(())
}
