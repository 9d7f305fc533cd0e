//! The releases the repository's signed targets hold (board, version, channel from each
//! index target's `custom.skerry`), re-read when `timestamp.json` changes.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use skerry_release::Repository;
use skerry_rollout::Release;
use skerry_tuf::ImageCustom;

/// A cached view of the repository's releases.
#[derive(Debug)]
pub struct ReleaseCatalog {
    repo: PathBuf,
    /// `timestamp.json`'s modification time, and the releases read then (shared, so a
    /// check-in takes them without copying).
    cache: Mutex<(Option<SystemTime>, Arc<Vec<Release>>)>,
}

impl ReleaseCatalog {
    pub fn new(repo: &Path) -> Self {
        Self {
            repo: repo.into(),
            cache: Mutex::new((None, Arc::default())),
        }
    }

    /// The releases now; an empty or unreadable repository has none (and says why once
    /// per change).
    pub fn releases(&self) -> Arc<Vec<Release>> {
        let stamp = std::fs::metadata(self.repo.join("metadata/timestamp.json"))
            .and_then(|m| m.modified())
            .ok();
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if stamp.is_some() && cache.0 != stamp {
            cache.1 = Arc::new(match read(&self.repo) {
                Ok(list) => list,
                Err(e) => {
                    tracing::error!(
                        error = %crate::timestamp::chain(&e),
                        "reading the repository's releases failed"
                    );
                    Vec::new()
                }
            });
            cache.0 = stamp;
        }
        Arc::clone(&cache.1)
    }
}

fn read(repo: &Path) -> Result<Vec<Release>, skerry_release::ReleaseError> {
    let current = Repository::new(repo).current()?;
    let mut out = Vec::new();
    for target in current.targets.signed.targets.values() {
        let Some(custom) = &target.custom else {
            continue;
        };
        let Ok(image) = serde_json::from_value::<ImageCustom>(custom.clone()) else {
            continue;
        };
        if let Ok(version) = semver::Version::parse(&image.skerry.version) {
            out.push(Release {
                board: image.skerry.board,
                version,
                channel: image.skerry.channel,
            });
        }
    }
    Ok(out)
}
