//! The TUF refresh over a transport: walk root versions, then timestamp, snapshot and
//! targets, each fetched with a size cap and verified by [`skerry_tuf::TrustedRoot`].

use std::time::SystemTime;

use skerry_tuf::{RememberedVersions, TrustedRoot, VerifiedRelease};

use crate::error::InstallError;
use crate::transport::{FetchError, Fetcher};

/// Caps on metadata sizes: an endless or huge file is refused, not buffered.
const MAX_ROOT: u64 = 512 * 1024;
const MAX_TIMESTAMP: u64 = 64 * 1024;
const MAX_SNAPSHOT: u64 = 4 * 1024 * 1024;
const MAX_TARGETS: u64 = 32 * 1024 * 1024;
/// No repository rotates root this often between two installs.
const MAX_ROOT_ROTATIONS: u64 = 1024;

/// Updates `root` and `remembered` and returns the verified metadata.
pub fn refresh(
    fetcher: &Fetcher,
    root: &mut TrustedRoot,
    remembered: &mut RememberedVersions,
    now: SystemTime,
) -> Result<VerifiedRelease, InstallError> {
    for _ in 0..MAX_ROOT_ROTATIONS {
        let name = format!("metadata/{}.root.json", root.version() + 1);
        match fetcher.get(&name, MAX_ROOT) {
            Ok(bytes) => root
                .rotate(&bytes, remembered)
                .map_err(|source| InstallError::Metadata { what: name, source })?,
            Err(FetchError::NotFound { .. }) => break,
            Err(source) => return Err(InstallError::Fetch { what: name, source }),
        }
    }
    let meta_err = |what: &str| {
        let what = what.to_string();
        move |source| InstallError::Metadata { what, source }
    };
    root.check_expiry(now).map_err(meta_err("the root"))?;

    let ts_bytes = get(fetcher, "metadata/timestamp.json", MAX_TIMESTAMP)?;
    let timestamp = root
        .verify_timestamp(&ts_bytes, remembered, now)
        .map_err(meta_err("timestamp.json"))?;
    let snap_version = timestamp
        .meta
        .get("snapshot.json")
        .map(|m| m.version)
        .unwrap_or_default();
    let snap_name = format!("metadata/{snap_version}.snapshot.json");
    let snap_bytes = get(fetcher, &snap_name, MAX_SNAPSHOT)?;
    let snapshot = root
        .verify_snapshot(&snap_bytes, &timestamp, remembered, now)
        .map_err(meta_err(&snap_name))?;
    let targets_version = snapshot
        .meta
        .get("targets.json")
        .map(|m| m.version)
        .unwrap_or_default();
    let targets_name = format!("metadata/{targets_version}.targets.json");
    let targets_bytes = get(fetcher, &targets_name, MAX_TARGETS)?;
    let targets = root
        .verify_targets(&targets_bytes, &snapshot, now)
        .map_err(meta_err(&targets_name))?;

    remembered.timestamp = timestamp.version;
    remembered.snapshot = snapshot.version;
    remembered.targets = targets.version;
    Ok(VerifiedRelease {
        root: root.root().clone(),
        timestamp,
        snapshot,
        targets,
    })
}

fn get(fetcher: &Fetcher, name: &str, max: u64) -> Result<Vec<u8>, InstallError> {
    fetcher
        .get(name, max)
        .map_err(|source| InstallError::Fetch {
            what: name.into(),
            source,
        })
}
