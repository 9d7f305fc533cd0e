//! The persisted time floor: a timestamp saved under `var/skerry/time/` and loaded at
//! start, so a board without an RTC (it boots in 1970) never believes a time earlier
//! than one it has already seen. It is only ever raised.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use skerryd_core::{Format, FormatError};

/// The floor file's format.
pub const TIME_FLOOR: Format = skerryd_core::formats::TIME_FLOOR;

/// The floor file's name in the time directory.
pub const FLOOR_FILE: &str = "floor.json";

/// The most bytes of the floor file read.
pub const MAX_FLOOR_FILE: u64 = 4096;

/// The release's floor when the build gives no `SOURCE_DATE_EPOCH`: 2026-01-01T00:00:00Z.
/// No release of this code is older, so no clock reading before it is right.
pub const RELEASE_FLOOR_UNIX: u64 = 1_767_225_600;

/// The release's build time (`SOURCE_DATE_EPOCH` at compile time), or
/// [`RELEASE_FLOOR_UNIX`].
pub fn release_floor() -> SystemTime {
    let secs = option_env!("SOURCE_DATE_EPOCH")
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or(RELEASE_FLOOR_UNIX)
        .max(RELEASE_FLOOR_UNIX);
    UNIX_EPOCH + Duration::from_secs(secs)
}

/// Version 1's body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FloorV1 {
    /// Seconds since 1970.
    unix_seconds: u64,
}

/// Why the floor could not be read or saved.
#[derive(Debug, thiserror::Error)]
pub enum FloorError {
    /// The file could not be read.
    #[error("could not read the time floor {path}: {source}")]
    Read {
        /// Which file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is longer than [`MAX_FLOOR_FILE`].
    #[error("the time floor {path} is {len} bytes, more than the limit of {MAX_FLOOR_FILE}")]
    TooLarge {
        /// Which file.
        path: PathBuf,
        /// How long it is.
        len: u64,
    },
    /// The file is not a floor this release reads.
    #[error(transparent)]
    Format(#[from] FormatError),
    /// The file could not be written.
    #[error("could not save the time floor {path}: {message}")]
    Write {
        /// Which file.
        path: PathBuf,
        /// Why.
        message: String,
    },
}

/// The floor and where it is kept.
#[derive(Debug)]
pub struct FloorStore {
    path: PathBuf,
    version: u32,
    floor: SystemTime,
    /// Set when the file is one this release must not overwrite (a newer format).
    read_only: bool,
}

fn unix_seconds(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

impl FloorStore {
    /// Loads the floor from `dir`, to be written back at `version` (the area's version
    /// for [`TIME_FLOOR`]). A missing file is a floor of 1970. A file that is no floor
    /// at all is reported and replaced at the next save; one a newer release wrote is
    /// reported and left alone.
    pub fn load(dir: &Path, version: u32) -> (FloorStore, Option<FloorError>) {
        let path = dir.join(FLOOR_FILE);
        let mut store = FloorStore {
            path: path.clone(),
            version,
            floor: UNIX_EPOCH,
            read_only: false,
        };
        match Self::read(&path) {
            Ok(Some(secs)) => {
                store.floor = UNIX_EPOCH + Duration::from_secs(secs);
                (store, None)
            }
            Ok(None) => (store, None),
            Err(e) => {
                store.read_only = matches!(e, FloorError::Format(FormatError::TooNew { .. }));
                (store, Some(e))
            }
        }
    }

    fn read(path: &Path) -> Result<Option<u64>, FloorError> {
        use std::io::Read as _;
        // Opening a FIFO for reading waits for a writer: refuse anything but a regular
        // file before opening it, so a damaged disk cannot hang the start.
        match std::fs::metadata(path) {
            Ok(meta) if !meta.is_file() => {
                return Err(FloorError::Read {
                    path: path.to_owned(),
                    source: std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        "it is not a regular file",
                    ),
                })
            }
            _ => {}
        }
        let file = match std::fs::File::open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(FloorError::Read {
                    path: path.to_owned(),
                    source,
                })
            }
        };
        let mut bytes = Vec::new();
        file.take(MAX_FLOOR_FILE + 1)
            .read_to_end(&mut bytes)
            .map_err(|source| FloorError::Read {
                path: path.to_owned(),
                source,
            })?;
        if bytes.len() as u64 > MAX_FLOOR_FILE {
            return Err(FloorError::TooLarge {
                path: path.to_owned(),
                len: bytes.len() as u64,
            });
        }
        let (_, body) = TIME_FLOOR.decode_as::<FloorV1>(path, &bytes)?;
        Ok(Some(body.unix_seconds))
    }

    /// The floor (whole seconds).
    pub fn floor(&self) -> SystemTime {
        self.floor
    }

    /// Raises the floor to `to` and saves it, if `to` is later by at least a second;
    /// never lowers it. Returns whether it saved.
    pub fn raise(&mut self, to: SystemTime) -> Result<bool, FloorError> {
        let secs = unix_seconds(to);
        if secs <= unix_seconds(self.floor) || self.read_only {
            return Ok(false);
        }
        let bytes = TIME_FLOOR.encode(self.version, &FloorV1 { unix_seconds: secs });
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| FloorError::Write {
                path: self.path.clone(),
                message: e.to_string(),
            })?;
        }
        skerry_medium::write_atomic(&self.path, &bytes).map_err(|e| FloorError::Write {
            path: self.path.clone(),
            message: e.to_string(),
        })?;
        self.floor = UNIX_EPOCH + Duration::from_secs(secs);
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn the_floor_is_raised_saved_and_never_lowered() {
        let dir = tempfile::tempdir().unwrap();
        let (mut store, err) = FloorStore::load(dir.path(), 1);
        assert!(err.is_none());
        assert_eq!(store.floor(), UNIX_EPOCH);
        assert!(store.raise(at(1_800_000_000)).unwrap());
        assert!(!store.raise(at(1_700_000_000)).unwrap());
        assert_eq!(store.floor(), at(1_800_000_000));
        let (again, err) = FloorStore::load(dir.path(), 1);
        assert!(err.is_none());
        assert_eq!(again.floor(), at(1_800_000_000));
    }

    #[test]
    fn a_newer_format_is_reported_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let newer = Format {
            name: TIME_FLOOR.name,
            current: 2,
        };
        let path = dir.path().join(FLOOR_FILE);
        let bytes = newer.encode(2, &serde_json::json!({"unix_seconds": 5, "zone": "x"}));
        std::fs::write(&path, &bytes).unwrap();
        let (mut store, err) = FloorStore::load(dir.path(), 1);
        let err = err.expect("a newer floor is reported");
        assert!(err.to_string().contains("newer release"), "{err}");
        assert!(!store.raise(at(1_900_000_000)).unwrap());
        assert_eq!(std::fs::read(&path).unwrap(), bytes);
    }

    #[test]
    fn garbage_is_reported_and_replaced() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FLOOR_FILE), b"not json").unwrap();
        let (mut store, err) = FloorStore::load(dir.path(), 1);
        assert!(err.unwrap().to_string().contains("skerry.time-floor"));
        assert!(store.raise(at(1_800_000_000)).unwrap());
        assert_eq!(FloorStore::load(dir.path(), 1).0.floor(), at(1_800_000_000));
    }
}
