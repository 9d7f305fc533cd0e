//! The TUF refresh over a transport: walk root versions, then timestamp, snapshot and
//! targets, each verified by [`skerry_tuf::TrustedRoot`].
//!
//! Every download is capped while it streams: roots and the timestamp by our own limits,
//! the snapshot and the targets by the exact length their verified parent pins (itself
//! bounded by [`skerry_tuf::limits`]), and each is checked against its pinned sha256
//! before it is parsed.

use std::time::SystemTime;

use skerry_tuf::limits::{MAX_ROOT_LEN, MAX_TIMESTAMP_LEN};
use skerry_tuf::{PinnedMeta, RememberedVersions, TrustedRoot, TufError, VerifiedRelease};

use crate::error::InstallError;
use crate::transport::{FetchError, Fetcher};

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
        match fetcher.get(&name, MAX_ROOT_LEN) {
            Ok(bytes) => root
                .rotate(&bytes, remembered)
                .map_err(|source| InstallError::Metadata { what: name, source })?,
            // S3 answers 403 for a file that does not exist (python-tuf and go-tuf
            // also take it as the end of the root chain).
            Err(FetchError::NotFound { .. } | FetchError::Status { status: 403, .. }) => break,
            Err(source) => return Err(InstallError::Fetch { what: name, source }),
        }
    }
    root.check_expiry(now).map_err(refused("the root"))?;

    let ts_bytes = get(fetcher, "metadata/timestamp.json", MAX_TIMESTAMP_LEN)?;
    let timestamp = root
        .verify_timestamp(&ts_bytes, remembered, now)
        .map_err(refused("timestamp.json"))?;

    let pin = timestamp
        .snapshot_pin()
        .map_err(refused("timestamp.json"))?;
    let snap_bytes = get_pinned(fetcher, &pin)?;
    let snapshot = root
        .verify_snapshot(&snap_bytes, &timestamp, remembered, now)
        .map_err(refused(&pin.file))?;

    let pin = snapshot.targets_pin().map_err(refused(&pin.file))?;
    let targets_bytes = get_pinned(fetcher, &pin)?;
    let targets = root
        .verify_targets(&targets_bytes, &snapshot, now)
        .map_err(refused(&pin.file))?;

    let release = root
        .release(timestamp, snapshot, targets)
        .map_err(refused("the refreshed metadata"))?;
    remembered.record(&release);
    Ok(release)
}

fn refused(what: &str) -> impl FnOnce(TufError) -> InstallError {
    let what = what.to_string();
    move |source| InstallError::Metadata { what, source }
}

/// Fetches a pinned file, never more than its pinned length: a longer file is refused
/// as metadata that does not match its signature, once its first byte too many arrives.
fn get_pinned(fetcher: &Fetcher, pin: &PinnedMeta) -> Result<Vec<u8>, InstallError> {
    let name = format!("metadata/{}", pin.file);
    match fetcher.get(&name, pin.length) {
        Ok(bytes) => Ok(bytes),
        Err(FetchError::TooLarge { .. }) => Err(InstallError::Metadata {
            what: name,
            source: TufError::LongerThanSigned {
                what: pin.file.clone(),
                expected: pin.length,
            },
        }),
        Err(source) => Err(InstallError::Fetch { what: name, source }),
    }
}

fn get(fetcher: &Fetcher, name: &str, max: u64) -> Result<Vec<u8>, InstallError> {
    fetcher
        .get(name, max)
        .map_err(|source| InstallError::Fetch {
            what: name.into(),
            source,
        })
}
