//! Every file skerryd keeps in `/var` carries its format's name and version, so a
//! rolled-back slot can always tell what it reads, and refuses with a clear error what
//! a newer release wrote instead of misreading it.
//!
//! The rule that makes rollback find a working `/var`: **until a new slot is committed,
//! it writes nothing the old slot cannot read.** [`VarArea`] carries it out:
//!
//! - On a committed slot the daemon reads and writes the main area (`var/skerry/...`).
//! - On a slot on trial it works in an overlay, `var/skerry/trial/<slot>/`, seeded from
//!   the main area at the trial's first start. The old slot never looks there.
//! - The next start on a committed slot promotes the overlay of that slot into the main
//!   area (the trial passed) or discards an overlay of any other slot (it was rolled
//!   back). Promotion renames whole directories, so a power cut leaves one or the other.
//! - What must reach the old slot from a trial (the upgrade history, with why the trial
//!   failed) is written in the main area in the version the committed release wrote
//!   ([`FormatFloor`]), never newer.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// A persisted value with its format's name and version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Envelope<T> {
    /// The format's name, e.g. "skerry.upgrade-history".
    pub format: String,
    /// The format's version.
    pub version: u32,
    /// The value.
    pub body: T,
}

/// Why a persisted file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    /// Not JSON in an envelope.
    #[error("{path} is not a skerry {format} file: {message}")]
    Malformed {
        /// Which file.
        path: PathBuf,
        /// The format expected.
        format: &'static str,
        /// What serde said.
        message: String,
    },
    /// Another format's file.
    #[error("{path} holds format {found:?}, expected {format:?}")]
    WrongFormat {
        /// Which file.
        path: PathBuf,
        /// What it holds.
        found: String,
        /// The format expected.
        format: &'static str,
    },
    /// Written by a newer release than this one.
    #[error(
        "{path} is {format} version {found}, written by a newer release; this release reads versions up to {supported}"
    )]
    TooNew {
        /// Which file.
        path: PathBuf,
        /// The format.
        format: &'static str,
        /// The version found.
        found: u32,
        /// The newest this build reads.
        supported: u32,
    },
}

/// A persisted format: its name and the newest version this build writes and reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Format {
    /// The name written into every file.
    pub name: &'static str,
    /// The newest version this build reads and, on a committed slot, writes.
    pub current: u32,
}

impl Format {
    /// Wraps `body` at `version` (at most [`Format::current`]).
    pub fn encode<T: Serialize>(&self, version: u32, body: &T) -> Vec<u8> {
        let envelope = Envelope {
            format: self.name.to_owned(),
            version: version.min(self.current),
            body,
        };
        let mut bytes = serde_json::to_vec_pretty(&envelope).expect("JSON of a serde value");
        bytes.push(b'\n');
        bytes
    }

    /// Reads the envelope and returns its version and raw body, refusing another format
    /// or a newer version; the caller upgrades older bodies.
    pub fn decode(
        &self,
        path: &Path,
        bytes: &[u8],
    ) -> Result<(u32, serde_json::Value), FormatError> {
        let envelope: Envelope<serde_json::Value> =
            serde_json::from_slice(bytes).map_err(|e| FormatError::Malformed {
                path: path.to_owned(),
                format: self.name,
                message: e.to_string(),
            })?;
        if envelope.format != self.name {
            return Err(FormatError::WrongFormat {
                path: path.to_owned(),
                found: envelope.format,
                format: self.name,
            });
        }
        if envelope.version > self.current {
            return Err(FormatError::TooNew {
                path: path.to_owned(),
                format: self.name,
                found: envelope.version,
                supported: self.current,
            });
        }
        Ok((envelope.version, envelope.body))
    }

    /// [`Format::decode`] and a typed body, for formats whose every version decodes
    /// into the same type.
    pub fn decode_as<T: DeserializeOwned>(
        &self,
        path: &Path,
        bytes: &[u8],
    ) -> Result<(u32, T), FormatError> {
        let (version, body) = self.decode(path, bytes)?;
        let body = serde_json::from_value(body).map_err(|e| FormatError::Malformed {
            path: path.to_owned(),
            format: self.name,
            message: e.to_string(),
        })?;
        Ok((version, body))
    }
}

/// The versions the committed release writes, one per format: what a trial must not
/// exceed in the main area. Persisted in `var/skerry/formats.json` by a committed slot.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FormatFloor {
    /// Format name → version the committed release writes.
    pub formats: std::collections::BTreeMap<String, u32>,
}

/// The format of `formats.json` itself.
pub const FORMAT_FLOOR: Format = Format {
    name: "skerry.format-floor",
    current: 1,
};

impl FormatFloor {
    /// The version to write `format` at in the main area: ours on a committed slot, and
    /// on a trial the committed release's (a format it never wrote is written at 1, the
    /// first version, which every release reads).
    pub fn version_for(&self, format: &Format, on_trial: bool) -> u32 {
        if !on_trial {
            return format.current;
        }
        self.formats
            .get(format.name)
            .copied()
            .unwrap_or(1)
            .min(format.current)
    }
}

/// Where this start of the daemon reads and writes `/var` state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VarArea {
    /// The directory the config store lives in.
    pub config: PathBuf,
    /// The directory the runtime's persistent resources live in.
    pub state: PathBuf,
    /// Set when the booted slot is on trial: the slot, and where its overlay lives.
    pub trial: Option<String>,
    /// The formats the committed release writes.
    pub floor: FormatFloor,
}

/// The format of `formats.json` and the directory names of the overlay.
const TRIAL_DIR: &str = "trial";
const DISCARDED_DIR: &str = "discarded";
/// The directories a trial overlays.
const OVERLAID: [&str; 2] = ["config", "state"];

/// Why the `/var` area could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum AreaError {
    /// A file system operation failed.
    #[error("could not prepare the /var area at {path}")]
    Io {
        /// Where.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// `formats.json` is unreadable.
    #[error(transparent)]
    Format(#[from] FormatError),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> AreaError + '_ {
    move |source| AreaError::Io {
        path: path.to_owned(),
        source,
    }
}

fn copy_tree(from: &Path, to: &Path) -> Result<(), AreaError> {
    std::fs::create_dir_all(to).map_err(io(to))?;
    if !from.exists() {
        return Ok(());
    }
    for entry in std::fs::read_dir(from).map_err(io(from))? {
        let entry = entry.map_err(io(from))?;
        let kind = entry.file_type().map_err(io(&entry.path()))?;
        let target = to.join(entry.file_name());
        if kind.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else if kind.is_file() {
            std::fs::copy(entry.path(), &target).map_err(io(&target))?;
        }
    }
    Ok(())
}

fn sync_dir(dir: &Path) -> Result<(), AreaError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(dir))
}

impl VarArea {
    /// Chooses this start's area under `var` (the layout's `var/skerry`) for the slot
    /// `booted`, which is on trial when `on_trial`:
    ///
    /// - a committed slot promotes its own overlay (the trial it ran passed) and
    ///   discards any other slot's (rolled back), then works in the main area;
    /// - a slot on trial works in its overlay, seeded from the main area the first time.
    ///
    /// Each step is a rename, repeated at the next start if a power cut stops it.
    pub fn select(var: &Path, booted: Option<&str>, on_trial: bool) -> Result<VarArea, AreaError> {
        let floor = Self::load_floor(var)?;
        let trials = var.join(TRIAL_DIR);
        if let (true, Some(slot)) = (on_trial, booted) {
            let overlay = trials.join(slot);
            let ready = overlay.join(".seeded");
            if !ready.exists() {
                let _ = std::fs::remove_dir_all(&overlay);
                for dir in OVERLAID {
                    copy_tree(&var.join(dir), &overlay.join(dir))?;
                }
                std::fs::write(&ready, b"").map_err(io(&ready))?;
                sync_dir(&overlay)?;
            }
            return Ok(VarArea {
                config: overlay.join("config"),
                state: overlay.join("state"),
                trial: Some(slot.to_owned()),
                floor,
            });
        }
        if trials.exists() {
            for entry in std::fs::read_dir(&trials).map_err(io(&trials))? {
                let entry = entry.map_err(io(&trials))?;
                let overlay = entry.path();
                let name = entry.file_name();
                if booted.is_some_and(|b| name == std::ffi::OsStr::new(b))
                    && overlay.join(".seeded").exists()
                {
                    Self::promote(var, &overlay)?;
                } else {
                    std::fs::remove_dir_all(&overlay).map_err(io(&overlay))?;
                }
            }
            let _ = std::fs::remove_dir(&trials);
        }
        for dir in OVERLAID {
            std::fs::create_dir_all(var.join(dir)).map_err(io(var))?;
        }
        Ok(VarArea {
            config: var.join("config"),
            state: var.join("state"),
            trial: None,
            floor,
        })
    }

    /// Moves a passed trial's overlay into the main area, one directory at a time: the
    /// main copy is moved aside, the overlay's moved in, then the old copy removed. A
    /// directory the overlay no longer holds was promoted before a power cut.
    fn promote(var: &Path, overlay: &Path) -> Result<(), AreaError> {
        let discarded = var.join(DISCARDED_DIR);
        std::fs::create_dir_all(&discarded).map_err(io(&discarded))?;
        for dir in OVERLAID {
            let from = overlay.join(dir);
            if !from.exists() {
                continue;
            }
            let main = var.join(dir);
            let aside = discarded.join(dir);
            let _ = std::fs::remove_dir_all(&aside);
            if main.exists() {
                std::fs::rename(&main, &aside).map_err(io(&main))?;
            }
            std::fs::rename(&from, &main).map_err(io(&from))?;
            sync_dir(var)?;
        }
        std::fs::remove_dir_all(overlay).map_err(io(overlay))?;
        std::fs::remove_dir_all(&discarded).map_err(io(&discarded))?;
        Ok(())
    }

    fn load_floor(var: &Path) -> Result<FormatFloor, AreaError> {
        let path = var.join("formats.json");
        match std::fs::read(&path) {
            Ok(bytes) => Ok(FORMAT_FLOOR.decode_as(&path, &bytes)?.1),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(FormatFloor::default()),
            Err(source) => Err(AreaError::Io { path, source }),
        }
    }

    /// Records the versions this build writes as the committed release's, when the
    /// booted slot is committed (never from a trial).
    pub fn record_floor(&self, var: &Path, formats: &[Format]) -> Result<(), AreaError> {
        if self.trial.is_some() {
            return Ok(());
        }
        let mut floor = self.floor.clone();
        for format in formats {
            floor.formats.insert(format.name.to_owned(), format.current);
        }
        let path = var.join("formats.json");
        skerry_medium::write_atomic(&path, &FORMAT_FLOOR.encode(FORMAT_FLOOR.current, &floor))
            .map_err(|e| AreaError::Io {
                path: path.clone(),
                source: std::io::Error::other(e),
            })
    }
}
