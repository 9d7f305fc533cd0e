//! The upgrade history: every step of every upgrade, the trial in progress, and the
//! releases this machine rolled back from. It lives in the main `/var` area (never in
//! a trial's overlay), so the old slot reads why a trial failed, and a trial writes it
//! at the committed release's version ([`UPGRADE_HISTORY`] through the floor).
//!
//! Version 1 holds the steps, the pending trial and the rolled-back releases; version
//! 2 adds who decided each step ([`Decider`]) and whether an upgrade was forced over a
//! rollback. Written at version 1, those fields are left out, so a release that reads
//! only version 1 (its body types deny unknown fields) still reads the file.
//!
//! The file is replaced atomically through a [`Directory`], so the same code runs on
//! the host and on the lossy power-loss model in tests.

use std::ffi::OsStr;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use skerry_medium::atomic::replace_file;
use skerry_medium::dir::Directory;
use skerry_medium::MediumError;
use skerryd_core::formats::UPGRADE_HISTORY;
use skerryd_core::FormatError;

/// The history's file name in the upgrade directory.
pub const HISTORY_FILE: &str = "history.json";
/// The largest history file read.
pub const MAX_HISTORY_BYTES: u64 = 1 << 20;
/// Steps kept (the oldest are dropped).
pub const MAX_ENTRIES: usize = 200;
/// Rolled-back releases remembered (the oldest are forgotten).
pub const MAX_ROLLED_BACK: usize = 64;
/// The longest reason or release name kept.
pub const MAX_TEXT: usize = 1024;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// An install into the inactive slot started.
    InstallStarted,
    /// An install failed; the slot stays unbootable.
    InstallFailed,
    /// The slot's trial began; the machine reboots into it.
    TrialBegun,
    /// The trial passed probation and was marked good.
    Committed,
    /// The slot was marked bad (or the bootloader gave it up) and the machine went
    /// back to the known-good slot.
    RolledBack,
    /// Power was lost after the install, before the trial began: nothing was tried.
    Interrupted,
}

impl Step {
    /// As the history resource and events name it.
    pub fn as_str(self) -> &'static str {
        match self {
            Step::InstallStarted => "install_started",
            Step::InstallFailed => "install_failed",
            Step::TrialBegun => "trial_begun",
            Step::Committed => "committed",
            Step::RolledBack => "rolled_back",
            Step::Interrupted => "interrupted",
        }
    }
}

/// Who decided a step (version 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decider {
    /// The Upgrade call.
    Upgrade,
    /// Probation: the critical health checks.
    Probation,
    /// The bootloader: the trial's attempts ran out.
    Bootloader,
    /// An operator's Rollback call.
    Operator,
}

/// One step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// Increases by one per step, never reused.
    pub seq: u64,
    /// Seconds since the Unix epoch.
    pub time: u64,
    /// What happened.
    pub step: Step,
    /// The release concerned ("" when not known).
    pub release: String,
    /// The slot concerned.
    pub slot: String,
    /// Why, for people.
    pub reason: String,
    /// Who decided it (version 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<Decider>,
    /// The upgrade was forced over a rollback (version 2).
    #[serde(default, skip_serializing_if = "is_false")]
    pub forced: bool,
}

/// How far a trial got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Recorded before the boot state's trial begins: if the machine comes back on the
    /// old slot with the target still bad, the trial never began.
    Beginning,
    /// The boot state holds the trial.
    Trial,
}

/// The trial in progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PendingTrial {
    /// The slot on trial.
    pub slot: String,
    /// The release it holds.
    pub release: String,
    /// The known-good slot it falls back to.
    pub from: String,
    /// How far it got.
    pub stage: Stage,
    /// Set, with the reason, once the trial was judged failed and before the slot is
    /// marked bad: a power cut in between finishes the rollback at the next start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    /// Who judged it failed (version 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_by: Option<Decider>,
    /// The upgrade was forced over a rollback (version 2).
    #[serde(default, skip_serializing_if = "is_false")]
    pub forced: bool,
}

/// The whole history.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct History {
    /// The steps, oldest first, at most [`MAX_ENTRIES`].
    pub entries: Vec<Entry>,
    /// The trial in progress.
    #[serde(default)]
    pub pending: Option<PendingTrial>,
    /// Releases this machine rolled back from, oldest first, at most [`MAX_ROLLED_BACK`].
    #[serde(default)]
    pub rolled_back: Vec<String>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn cut(mut text: String) -> String {
    if text.len() > MAX_TEXT {
        let mut end = MAX_TEXT;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A step about to be recorded.
#[derive(Debug, Clone)]
pub struct NewEntry<'a> {
    /// What happened.
    pub step: Step,
    /// The release.
    pub release: &'a str,
    /// The slot.
    pub slot: &'a str,
    /// Why.
    pub reason: String,
    /// Who decided it.
    pub by: Decider,
    /// Forced over a rollback.
    pub forced: bool,
}

impl History {
    /// Appends a step, dropping the oldest beyond [`MAX_ENTRIES`]; returns it.
    pub fn record(&mut self, new: NewEntry<'_>) -> Entry {
        let seq = self.entries.last().map_or(1, |e| e.seq + 1);
        let entry = Entry {
            seq,
            time: now_unix(),
            step: new.step,
            release: cut(new.release.to_owned()),
            slot: cut(new.slot.to_owned()),
            reason: cut(new.reason),
            by: Some(new.by),
            forced: new.forced,
        };
        self.entries.push(entry.clone());
        if self.entries.len() > MAX_ENTRIES {
            let extra = self.entries.len() - MAX_ENTRIES;
            self.entries.drain(..extra);
        }
        entry
    }

    /// Whether this machine rolled back from `release`.
    pub fn is_rolled_back(&self, release: &str) -> bool {
        self.rolled_back.iter().any(|r| r == release)
    }

    /// Remembers that this machine rolled back from `release`.
    pub fn add_rolled_back(&mut self, release: &str) {
        if release.is_empty() || self.is_rolled_back(release) {
            return;
        }
        self.rolled_back.push(cut(release.to_owned()));
        if self.rolled_back.len() > MAX_ROLLED_BACK {
            self.rolled_back.remove(0);
        }
    }

    /// The history as version `version` holds it: version 1 leaves out what version 2
    /// added.
    pub fn at_version(&self, version: u32) -> History {
        let mut body = self.clone();
        if version < 2 {
            for entry in &mut body.entries {
                entry.by = None;
                entry.forced = false;
            }
            if let Some(pending) = &mut body.pending {
                pending.failure_by = None;
                pending.forced = false;
            }
        }
        body
    }
}

/// Why the history could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// The medium failed.
    #[error("the upgrade history: {0}")]
    Medium(#[from] MediumError),
    /// The file is not a history this build reads.
    #[error(transparent)]
    Format(#[from] FormatError),
    /// Larger than any history this build writes.
    #[error("the upgrade history {path} holds {len} bytes, more than the {MAX_HISTORY_BYTES} it is allowed")]
    TooLarge {
        /// Where.
        path: String,
        /// Its length.
        len: u64,
    },
}

/// The history file in a directory, written at one version.
#[derive(Debug, Clone)]
pub struct HistoryStore<D> {
    dir: D,
    version: u32,
}

impl<D: Directory> HistoryStore<D> {
    /// The history in `dir`, written at `version` (the area's version for
    /// [`UPGRADE_HISTORY`]: the floor's during a trial).
    pub fn new(dir: D, version: u32) -> Self {
        HistoryStore {
            dir,
            version: version.clamp(1, UPGRADE_HISTORY.current),
        }
    }

    /// The version this store writes.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// Reads the history; an empty one when there is no file yet.
    pub fn load(&self) -> Result<History, HistoryError> {
        let name = OsStr::new(HISTORY_FILE);
        let len = match self.dir.len(name) {
            Ok(len) => len,
            Err(e) if e.is_not_found() => return Ok(History::default()),
            Err(e) => return Err(e.into()),
        };
        let path = self.dir.path().join(HISTORY_FILE);
        if len > MAX_HISTORY_BYTES {
            return Err(HistoryError::TooLarge {
                path: path.display().to_string(),
                len,
            });
        }
        let bytes = self.dir.read_at(name, 0, len as usize)?;
        let (_, history) = UPGRADE_HISTORY.decode_as::<History>(&path, &bytes)?;
        Ok(history)
    }

    /// Replaces the history atomically.
    pub fn save(&mut self, history: &History) -> Result<(), HistoryError> {
        let bytes = UPGRADE_HISTORY.encode(self.version, &history.at_version(self.version));
        replace_file(&mut self.dir, OsStr::new(HISTORY_FILE), &bytes)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use skerry_medium::dir::HostDir;

    fn entry(step: Step, release: &str) -> NewEntry<'_> {
        NewEntry {
            step,
            release,
            slot: "B",
            reason: "why".into(),
            by: Decider::Probation,
            forced: true,
        }
    }

    #[test]
    fn version_1_leaves_out_what_version_2_added_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let mut h = History::default();
        h.record(entry(Step::RolledBack, "1.2.0"));
        h.add_rolled_back("1.2.0");
        let mut old = HistoryStore::new(HostDir::new(dir.path()), 1);
        old.save(&h).unwrap();
        let text = std::fs::read_to_string(dir.path().join(HISTORY_FILE)).unwrap();
        assert!(text.contains("\"version\": 1"), "{text}");
        assert!(
            !text.contains("forced") && !text.contains("\"by\""),
            "{text}"
        );
        let back = old.load().unwrap();
        assert_eq!(back.entries[0].by, None);
        assert!(back.is_rolled_back("1.2.0"));
        let mut new = HistoryStore::new(HostDir::new(dir.path()), 2);
        new.save(&h).unwrap();
        assert_eq!(new.load().unwrap(), h);
    }

    #[test]
    fn a_newer_or_oversized_history_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(HISTORY_FILE);
        std::fs::write(
            &path,
            r#"{"format":"skerry.upgrade-history","version":7,"body":{"entries":[]}}"#,
        )
        .unwrap();
        let store = HistoryStore::new(HostDir::new(dir.path()), 2);
        let err = store.load().unwrap_err().to_string();
        assert!(err.contains("version 7"), "{err}");
        std::fs::write(&path, vec![b' '; MAX_HISTORY_BYTES as usize + 1]).unwrap();
        let err = store.load().unwrap_err().to_string();
        assert!(err.contains("more than"), "{err}");
    }

    #[test]
    fn the_history_and_the_rolled_back_list_stay_bounded() {
        let mut h = History::default();
        for i in 0..MAX_ENTRIES + 10 {
            h.record(entry(Step::InstallStarted, "1.0.0"));
            h.add_rolled_back(&format!("1.0.{i}"));
        }
        assert_eq!(h.entries.len(), MAX_ENTRIES);
        assert_eq!(h.entries.last().unwrap().seq, (MAX_ENTRIES + 10) as u64);
        assert_eq!(h.rolled_back.len(), MAX_ROLLED_BACK);
        assert!(h.is_rolled_back(&format!("1.0.{}", MAX_ENTRIES + 9)));
        assert!(!h.is_rolled_back("1.0.0"));
        let long = "x".repeat(MAX_TEXT * 2);
        let e = h.record(NewEntry {
            reason: long,
            ..entry(Step::Committed, "1.0.0")
        });
        assert_eq!(e.reason.len(), MAX_TEXT);
    }
}
