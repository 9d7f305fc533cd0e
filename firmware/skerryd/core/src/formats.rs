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

/// The upgrade history (`var/skerry/upgrade/history.json`), written by the upgrade
/// subsystem in the main area, at the floor's version during a trial. Version 2 added
/// who decided each step and whether an upgrade was forced over a rollback.
pub const UPGRADE_HISTORY: Format = Format {
    name: "skerry.upgrade-history",
    current: 2,
};

/// The config subsystem's pending try (`var/skerry/config/try.json`).
pub const CONFIG_TRY: Format = Format {
    name: "skerry.config-try",
    current: 1,
};

/// The config subsystem's generation counter (`var/skerry/config/generation.json`).
pub const CONFIG_GENERATION: Format = Format {
    name: "skerry.config-generation",
    current: 1,
};

/// The persisted time floor (`var/skerry/time/floor.json`).
pub const TIME_FLOOR: Format = Format {
    name: "skerry.time-floor",
    current: 1,
};

/// Every envelope format this build writes in `/var`, in one table, recorded as the
/// floor when a slot running this build is committed. A subsystem that adds a
/// persisted format defines it here. (The config documents and history carry
/// skerry-config's own `formatVersion`, and the runtime's log its own header; both live
/// in the trial overlay.)
pub const BUILD_FORMATS: &[Format] = &[
    FORMAT_FLOOR,
    UPGRADE_HISTORY,
    CONFIG_TRY,
    CONFIG_GENERATION,
    TIME_FLOOR,
];

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
            .clamp(1, format.current)
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

/// The directory names of the overlay and of what promotion moves aside.
const TRIAL_DIR: &str = "trial";
const DISCARDED_DIR: &str = "discarded";
/// The marker of an overlay whose seeding finished.
const SEEDED: &str = ".seeded";
/// Written into a trial's overlay right after its slot was committed: the overlay is
/// then the newest `/var`, promoted at the next start whichever slot that is.
const COMMITTED: &str = ".committed";
/// The floor's file name in the main area.
const FLOOR_FILE: &str = "formats.json";
/// The directories a trial overlays.
const OVERLAID: [&str; 2] = ["config", "state"];
/// The deepest directory tree seeded into an overlay.
const MAX_DEPTH: usize = 16;

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
    /// The main area holds a tree deeper than [`MAX_DEPTH`].
    #[error(
        "{path} is nested more than {MAX_DEPTH} directories deep; refusing to seed a trial from it"
    )]
    TooDeep {
        /// Where.
        path: PathBuf,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> AreaError + '_ {
    move |source| AreaError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Copies `from` into `to`, every file synced and every directory synced after its
/// entries, so a seeded marker written afterwards never outlives a torn copy.
fn copy_tree(from: &Path, to: &Path, depth: usize) -> Result<(), AreaError> {
    if depth > MAX_DEPTH {
        return Err(AreaError::TooDeep {
            path: from.to_owned(),
        });
    }
    std::fs::create_dir_all(to).map_err(io(to))?;
    if !from.exists() {
        return sync_dir(to);
    }
    for entry in std::fs::read_dir(from).map_err(io(from))? {
        let entry = entry.map_err(io(from))?;
        let kind = entry.file_type().map_err(io(&entry.path()))?;
        let target = to.join(entry.file_name());
        if kind.is_dir() {
            copy_tree(&entry.path(), &target, depth + 1)?;
        } else if kind.is_file() {
            std::fs::copy(entry.path(), &target).map_err(io(&target))?;
            std::fs::File::open(&target)
                .and_then(|f| f.sync_all())
                .map_err(io(&target))?;
        }
    }
    sync_dir(to)
}

fn sync_dir(dir: &Path) -> Result<(), AreaError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(dir))
}

/// Removes `path` if it exists.
fn remove_tree(path: &Path) -> Result<(), AreaError> {
    match std::fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(AreaError::Io {
            path: path.to_owned(),
            source: e,
        }),
    }
}

/// Counts the renames and removals of a promotion, so a test can stop it after any
/// of them, as a power cut would. Production code never stops.
#[derive(Debug, Default)]
struct Steps {
    left: Option<usize>,
}

impl Steps {
    fn step(&mut self, what: &Path) -> Result<(), AreaError> {
        match &mut self.left {
            Some(0) => Err(AreaError::Io {
                path: what.to_owned(),
                source: std::io::Error::other("power cut (test)"),
            }),
            Some(n) => {
                *n -= 1;
                Ok(())
            }
            None => Ok(()),
        }
    }
}

impl VarArea {
    /// Chooses this start's area under `var` (the layout's `var/skerry`) for the slot
    /// `booted`, which is on trial when `on_trial`:
    ///
    /// - a committed slot promotes its own overlay (the trial it ran passed) and
    ///   discards any other slot's (rolled back), then works in the main area;
    /// - a slot on trial works in its overlay, seeded from the main area the first time
    ///   (an overlay whose seeding a power cut interrupted is seeded again).
    ///
    /// Each step is a rename or a removal, repeated at the next start if a power cut
    /// stops it.
    pub fn select(var: &Path, booted: Option<&str>, on_trial: bool) -> Result<VarArea, AreaError> {
        Self::select_with(var, booted, on_trial, &mut Steps::default())
    }

    fn select_with(
        var: &Path,
        booted: Option<&str>,
        on_trial: bool,
        steps: &mut Steps,
    ) -> Result<VarArea, AreaError> {
        let floor = Self::load_floor(var)?;
        let trials = var.join(TRIAL_DIR);
        // An overlay whose slot was committed is the newest /var whatever boots now
        // (a committed slot may have begun another trial before rebooting); one whose
        // slot is booted and not on trial was committed before its marker was written.
        if trials.exists() {
            for entry in std::fs::read_dir(&trials).map_err(io(&trials))? {
                let entry = entry.map_err(io(&trials))?;
                let overlay = entry.path();
                let name = entry.file_name();
                let own = booted.is_some_and(|b| name == std::ffi::OsStr::new(b));
                let seeded = overlay.join(SEEDED).exists();
                if seeded && (overlay.join(COMMITTED).exists() || (own && !on_trial)) {
                    Self::promote(var, &overlay, steps)?;
                } else if !(own && on_trial) {
                    steps.step(&overlay)?;
                    remove_tree(&overlay)?;
                }
            }
        }
        if let (true, Some(slot)) = (on_trial, booted) {
            let overlay = trials.join(slot);
            let ready = overlay.join(SEEDED);
            if !ready.exists() {
                remove_tree(&overlay)?;
                for dir in OVERLAID {
                    copy_tree(&var.join(dir), &overlay.join(dir), 0)?;
                }
                std::fs::File::create(&ready)
                    .and_then(|f| f.sync_all())
                    .map_err(io(&ready))?;
                sync_dir(&overlay)?;
                sync_dir(&trials)?;
            }
            remove_tree(&var.join(DISCARDED_DIR))?;
            return Ok(VarArea {
                config: overlay.join("config"),
                state: overlay.join("state"),
                trial: Some(slot.to_owned()),
                floor,
            });
        }
        if trials.exists() {
            steps.step(&trials)?;
            let _ = std::fs::remove_dir(&trials);
        }
        // What a promotion moved aside, left by a power cut after the overlay was gone.
        remove_tree(&var.join(DISCARDED_DIR))?;
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
    /// directory the overlay no longer holds was promoted before a power cut; a main
    /// directory missing while the overlay still holds its copy was moved aside before
    /// one.
    fn promote(var: &Path, overlay: &Path, steps: &mut Steps) -> Result<(), AreaError> {
        let discarded = var.join(DISCARDED_DIR);
        std::fs::create_dir_all(&discarded).map_err(io(&discarded))?;
        for dir in OVERLAID {
            let from = overlay.join(dir);
            if !from.exists() {
                continue;
            }
            let main = var.join(dir);
            let aside = discarded.join(dir);
            if main.exists() {
                remove_tree(&aside)?;
                steps.step(&main)?;
                std::fs::rename(&main, &aside).map_err(io(&main))?;
                sync_dir(var)?;
                sync_dir(&discarded)?;
            }
            steps.step(&from)?;
            std::fs::rename(&from, &main).map_err(io(&from))?;
            sync_dir(var)?;
            sync_dir(overlay)?;
        }
        steps.step(overlay)?;
        remove_tree(overlay)?;
        steps.step(&discarded)?;
        remove_tree(&discarded)?;
        sync_dir(var)
    }

    fn load_floor(var: &Path) -> Result<FormatFloor, AreaError> {
        let path = var.join(FLOOR_FILE);
        match crate::layout::read_small(&path) {
            Ok(bytes) => Ok(FORMAT_FLOOR.decode_as(&path, &bytes)?.1),
            Err(_) if !path.exists() => Ok(FormatFloor::default()),
            Err(e) => Err(AreaError::Io {
                path,
                source: std::io::Error::other(e.to_string()),
            }),
        }
    }

    /// The version to write `format` at in the main area from this start: the floor's
    /// during a trial, ours on a committed slot.
    pub fn version_for(&self, format: &Format) -> u32 {
        self.floor.version_for(format, self.trial.is_some())
    }

    /// Marks this start's trial overlay as committed (its slot was just marked good),
    /// durably; from then on the next start promotes it whichever slot boots. Does
    /// nothing outside a trial.
    pub fn mark_committed(&self) -> Result<(), AreaError> {
        let Some(overlay) = self.state.parent() else {
            return Ok(());
        };
        if self.trial.is_none() {
            return Ok(());
        }
        let marker = overlay.join(COMMITTED);
        std::fs::File::create(&marker)
            .and_then(|f| f.sync_all())
            .map_err(io(&marker))?;
        sync_dir(overlay)
    }

    /// Whether [`VarArea::mark_committed`] was done (or there is no overlay at all).
    pub fn committed_or_main(&self) -> bool {
        self.trial.is_none()
            || self
                .state
                .parent()
                .is_some_and(|o| o.join(COMMITTED).exists())
    }

    /// Records the versions this build writes as the committed release's, when the
    /// booted slot is committed (never from a trial: a trial's area returns `Ok(false)`
    /// and writes nothing). Returns whether the floor changed.
    pub fn record_floor(&self, var: &Path, formats: &[Format]) -> Result<bool, AreaError> {
        if self.trial.is_some() {
            return Ok(false);
        }
        let mut floor = Self::load_floor(var)?;
        let before = floor.clone();
        for format in formats {
            floor.formats.insert(format.name.to_owned(), format.current);
        }
        if floor == before && var.join(FLOOR_FILE).exists() {
            return Ok(false);
        }
        let path = var.join(FLOOR_FILE);
        skerry_medium::write_atomic(&path, &FORMAT_FLOOR.encode(FORMAT_FLOOR.current, &floor))
            .map_err(|e| AreaError::Io {
                path: path.clone(),
                source: std::io::Error::other(e),
            })?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, text: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    fn read(path: &Path) -> String {
        std::fs::read_to_string(path).unwrap()
    }

    /// A main area as a committed v1 left it.
    fn main_area() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let var = dir.path();
        write(&var.join("config/config.json"), "v1 config");
        write(&var.join("state/log"), "v1 state");
        write(&var.join("state/nested/deep"), "v1 nested");
        dir
    }

    #[test]
    fn a_trial_works_in_an_overlay_seeded_from_the_main_area() {
        let dir = main_area();
        let var = dir.path();
        let area = VarArea::select(var, Some("B"), true).unwrap();
        assert_eq!(area.trial.as_deref(), Some("B"));
        assert_eq!(area.config, var.join("trial/B/config"));
        assert_eq!(read(&area.config.join("config.json")), "v1 config");
        assert_eq!(read(&area.state.join("nested/deep")), "v1 nested");
        // The trial writes in its overlay; a second start of the same trial keeps it.
        write(&area.config.join("config.json"), "v2 config");
        let again = VarArea::select(var, Some("B"), true).unwrap();
        assert_eq!(read(&again.config.join("config.json")), "v2 config");
        assert_eq!(read(&var.join("config/config.json")), "v1 config");
    }

    #[test]
    fn an_overlay_whose_seeding_was_cut_is_seeded_again() {
        let dir = main_area();
        let var = dir.path();
        // A cut before the marker: a half copy with nothing saying it is complete.
        write(&var.join("trial/B/config/partial"), "torn");
        let area = VarArea::select(var, Some("B"), true).unwrap();
        assert!(!area.config.join("partial").exists());
        assert_eq!(read(&area.config.join("config.json")), "v1 config");
    }

    #[test]
    fn a_rolled_back_trial_is_discarded_and_the_main_area_untouched() {
        let dir = main_area();
        let var = dir.path();
        let trial = VarArea::select(var, Some("B"), true).unwrap();
        write(&trial.config.join("config.json"), "v2 config");
        write(&trial.state.join("new-type"), "v2 only");
        // The old slot A comes back, committed.
        let area = VarArea::select(var, Some("A"), false).unwrap();
        assert_eq!(area.trial, None);
        assert_eq!(area.config, var.join("config"));
        assert_eq!(read(&area.config.join("config.json")), "v1 config");
        assert_eq!(read(&area.state.join("log")), "v1 state");
        assert!(!area.state.join("new-type").exists());
        assert!(!var.join("trial").exists());
    }

    #[test]
    fn a_committed_trial_is_promoted_at_the_next_start() {
        let dir = main_area();
        let var = dir.path();
        let trial = VarArea::select(var, Some("B"), true).unwrap();
        write(&trial.config.join("config.json"), "v2 config");
        write(&trial.state.join("new-type"), "v2 only");
        let area = VarArea::select(var, Some("B"), false).unwrap();
        assert_eq!(read(&area.config.join("config.json")), "v2 config");
        assert_eq!(read(&area.state.join("new-type")), "v2 only");
        assert!(!var.join("trial").exists());
        assert!(!var.join(DISCARDED_DIR).exists());
    }

    #[test]
    fn a_committed_overlay_is_promoted_before_the_next_trial_is_seeded() {
        let dir = main_area();
        let var = dir.path();
        // B on trial, committed, and without a reboot an upgrade begins A's trial.
        let trial = VarArea::select(var, Some("B"), true).unwrap();
        write(&trial.config.join("config.json"), "v2 config");
        trial.mark_committed().unwrap();
        assert!(trial.committed_or_main());
        let next = VarArea::select(var, Some("A"), true).unwrap();
        // A's trial starts from what B committed, and B's /var is the main area now.
        assert_eq!(read(&next.config.join("config.json")), "v2 config");
        assert_eq!(read(&var.join("config/config.json")), "v2 config");
        assert!(!var.join("trial/B").exists());
        // A fails: B comes back on what it committed.
        let back = VarArea::select(var, Some("B"), false).unwrap();
        assert_eq!(read(&back.config.join("config.json")), "v2 config");
        assert!(!var.join("trial").exists());
    }

    #[test]
    fn an_unmarked_overlay_of_another_slot_is_discarded_when_a_trial_starts() {
        let dir = main_area();
        let var = dir.path();
        let failed = VarArea::select(var, Some("B"), true).unwrap();
        write(&failed.config.join("config.json"), "v2 config");
        assert!(!failed.committed_or_main());
        let next = VarArea::select(var, Some("A"), true).unwrap();
        assert_eq!(read(&next.config.join("config.json")), "v1 config");
        assert!(!var.join("trial/B").exists());
    }

    #[test]
    fn a_power_cut_at_every_promotion_step_resumes_at_the_next_start() {
        let mut cuts = 0;
        for k in 0.. {
            let dir = main_area();
            let var = dir.path();
            let trial = VarArea::select(var, Some("B"), true).unwrap();
            write(&trial.config.join("config.json"), "v2 config");
            write(&trial.state.join("log"), "v2 state");
            let mut steps = Steps { left: Some(k) };
            let cut = VarArea::select_with(var, Some("B"), false, &mut steps);
            if cut.is_ok() {
                assert!(k > 0, "a promotion takes steps");
                break;
            }
            cuts += 1;
            let area = VarArea::select(var, Some("B"), false)
                .unwrap_or_else(|e| panic!("after a cut at step {k}: {e}"));
            assert_eq!(
                read(&area.config.join("config.json")),
                "v2 config",
                "cut {k}"
            );
            assert_eq!(read(&area.state.join("log")), "v2 state", "cut {k}");
            assert!(!var.join("trial").exists(), "cut {k}");
            assert!(!var.join(DISCARDED_DIR).exists(), "cut {k}");
        }
        assert!(cuts >= 5, "only {cuts} cut points");
    }

    #[test]
    fn the_floor_gives_the_committed_release_versions_during_a_trial() {
        let dir = main_area();
        let var = dir.path();
        let newer = Format {
            name: "skerry.test",
            current: 3,
        };
        // Nothing recorded: a trial writes version 1, a committed slot its own.
        let trial = VarArea::select(var, Some("B"), true).unwrap();
        assert_eq!(trial.version_for(&newer), 1);
        assert_eq!(trial.version_for(&UPGRADE_HISTORY), 1);
        // A trial never records its versions as the floor.
        assert!(!trial.record_floor(var, &[newer]).unwrap());
        assert!(!var.join(FLOOR_FILE).exists());
        let committed = VarArea::select(var, Some("A"), false).unwrap();
        assert_eq!(committed.version_for(&newer), 3);
        let older = Format {
            name: "skerry.test",
            current: 2,
        };
        assert!(committed.record_floor(var, &[older]).unwrap());
        assert!(!committed.record_floor(var, &[older]).unwrap(), "unchanged");
        let trial = VarArea::select(var, Some("B"), true).unwrap();
        assert_eq!(trial.floor.formats["skerry.test"], 2);
        assert_eq!(trial.version_for(&newer), 2);
        assert_eq!(trial.version_for(&older), 2);
    }

    #[test]
    fn a_floor_written_by_a_newer_release_is_refused_by_name() {
        let dir = main_area();
        let var = dir.path();
        write(
            &var.join(FLOOR_FILE),
            r#"{"format":"skerry.format-floor","version":9,"body":{"formats":{}}}"#,
        );
        let err = VarArea::select(var, Some("A"), false).unwrap_err();
        assert!(err.to_string().contains("version 9"), "{err}");
    }
}
