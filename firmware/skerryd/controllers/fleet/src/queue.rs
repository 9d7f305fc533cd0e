//! The reports not yet acknowledged, kept on disk (`/var/skerry/fleet/queue.json`) so
//! they survive a restart and a server outage. Each upgrade-history step becomes one
//! report with the next sequence number; only what the server acknowledged is dropped.
//!
//! Bounded: past [`MAX_QUEUED`] reports the oldest non-terminal one (downloading,
//! rebooting, probation — a later step says more) is dropped, and the count of dropped
//! reports is kept and logged; a terminal step (committed, rolled back, failed) is
//! dropped only when nothing else is left to drop.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use skerry_proto::fleet::v1::UpgradeStep;

/// Reports kept at most (the server takes at most 64 per check-in).
pub const MAX_QUEUED: usize = 64;
/// The largest queue file read.
pub const MAX_QUEUE_BYTES: u64 = 256 * 1024;
/// The longest reason kept (the server takes 1 KiB).
pub const MAX_REASON: usize = 1024;

/// One report waiting for the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueuedReport {
    /// The report's sequence (increasing from 1, never reused).
    pub sequence: u64,
    /// The release the step is about.
    pub target_version: String,
    /// The step (the proto's enum value).
    pub step: i32,
    /// Why.
    pub reason: String,
    /// Seconds since the Unix epoch.
    pub at: u64,
}

impl QueuedReport {
    fn terminal(&self) -> bool {
        matches!(
            UpgradeStep::try_from(self.step),
            Ok(UpgradeStep::Committed | UpgradeStep::RolledBack | UpgradeStep::Failed)
        )
    }
}

/// The persisted queue.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueState {
    /// The last sequence handed out.
    pub last_sequence: u64,
    /// The last sequence the server acknowledged.
    pub acknowledged: u64,
    /// The last upgrade-history step turned into a report.
    pub last_history_seq: u64,
    /// Reports dropped because the queue was full.
    pub dropped: u64,
    /// Waiting, oldest first.
    pub reports: Vec<QueuedReport>,
}

/// Why the queue could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("reading the fleet report queue {path}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the fleet report queue {path} is larger than {MAX_QUEUE_BYTES} bytes")]
    TooLarge { path: PathBuf },
    #[error("the fleet report queue {path} is not valid; remove it to start over")]
    Corrupt {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("writing the fleet report queue {path}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The queue and where it lives.
#[derive(Debug)]
pub struct ReportQueue {
    path: PathBuf,
    state: QueueState,
}

impl ReportQueue {
    /// Opens `dir/queue.json`, empty when absent.
    pub fn open(dir: &Path) -> Result<Self, QueueError> {
        let path = dir.join("queue.json");
        let state = match std::fs::metadata(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => QueueState::default(),
            Err(source) => return Err(QueueError::Read { path, source }),
            Ok(meta) if meta.len() > MAX_QUEUE_BYTES => return Err(QueueError::TooLarge { path }),
            Ok(_) => {
                let bytes = std::fs::read(&path).map_err(|source| QueueError::Read {
                    path: path.clone(),
                    source,
                })?;
                serde_json::from_slice(&bytes).map_err(|source| QueueError::Corrupt {
                    path: path.clone(),
                    source,
                })?
            }
        };
        Ok(ReportQueue { path, state })
    }

    /// What it holds.
    pub fn state(&self) -> &QueueState {
        &self.state
    }

    /// Appends a report for upgrade-history step `history_seq` (ignored when already
    /// taken), dropping the oldest report when full.
    pub fn push(
        &mut self,
        history_seq: u64,
        step: UpgradeStep,
        target_version: &str,
        reason: &str,
        at: u64,
    ) -> bool {
        self.push_steps(history_seq, &[step], target_version, reason, at)
    }

    /// Appends one report per step, in order, for upgrade-history step `history_seq`
    /// (ignored when already taken): one history step may say several report steps (a
    /// trial begun is the image installed, then the reboot).
    pub fn push_steps(
        &mut self,
        history_seq: u64,
        steps: &[UpgradeStep],
        target_version: &str,
        reason: &str,
        at: u64,
    ) -> bool {
        if history_seq <= self.state.last_history_seq {
            return false;
        }
        self.state.last_history_seq = history_seq;
        for step in steps {
            self.append(*step, target_version, reason, at);
        }
        true
    }

    /// Appends a report no history step carries (probation begun on this start),
    /// dropping the oldest report when full.
    pub fn append(&mut self, step: UpgradeStep, target_version: &str, reason: &str, at: u64) {
        self.state.last_sequence += 1;
        let mut reason = reason.to_owned();
        if reason.len() > MAX_REASON {
            let mut cut = MAX_REASON;
            while !reason.is_char_boundary(cut) {
                cut -= 1;
            }
            reason.truncate(cut);
        }
        self.state.reports.push(QueuedReport {
            sequence: self.state.last_sequence,
            target_version: target_version.chars().take(128).collect(),
            step: step as i32,
            reason,
            at,
        });
        while self.state.reports.len() > MAX_QUEUED {
            let victim = self
                .state
                .reports
                .iter()
                .position(|r| !r.terminal())
                .unwrap_or(0);
            let gone = self.state.reports.remove(victim);
            self.state.dropped += 1;
            tracing::warn!(
                sequence = gone.sequence,
                dropped = self.state.dropped,
                "the fleet report queue is full: an old report was dropped"
            );
        }
    }

    /// The server has every report up to `sequence`: forget them. An acknowledgement
    /// beyond what was handed out is a server's mistake and acknowledges nothing more.
    pub fn acknowledge(&mut self, sequence: u64) {
        let sequence = sequence.min(self.state.last_sequence);
        if sequence > self.state.acknowledged {
            self.state.acknowledged = sequence;
        }
        let acked = self.state.acknowledged;
        self.state.reports.retain(|r| r.sequence > acked);
    }

    /// Writes it atomically.
    pub fn save(&self) -> Result<(), QueueError> {
        let write = |source| QueueError::Write {
            path: self.path.clone(),
            source,
        };
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(write)?;
        }
        let bytes = serde_json::to_vec_pretty(&self.state).map_err(|e| write(e.into()))?;
        skerry_medium::write_atomic(&self.path, &bytes).map_err(|e| write(std::io::Error::other(e)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_survive_a_reopen_and_only_acknowledged_ones_go() {
        let dir = tempfile::tempdir().unwrap();
        let mut q = ReportQueue::open(dir.path()).unwrap();
        assert!(q.push(1, UpgradeStep::Downloading, "2.0.0", "", 10));
        assert!(q.push(2, UpgradeStep::Rebooting, "2.0.0", "", 11));
        assert!(
            !q.push(2, UpgradeStep::Rebooting, "2.0.0", "", 11),
            "a step is taken once"
        );
        q.save().unwrap();
        let mut q = ReportQueue::open(dir.path()).unwrap();
        assert_eq!(q.state().reports.len(), 2);
        q.acknowledge(1);
        assert_eq!(q.state().reports[0].sequence, 2);
        q.acknowledge(99);
        assert_eq!(q.state().acknowledged, 2, "never past what was handed out");
        assert!(q.state().reports.is_empty());
        q.acknowledge(0);
        assert_eq!(q.state().acknowledged, 2, "never backwards");
    }

    #[test]
    fn one_history_step_may_be_several_reports_and_extra_reports_take_the_next_sequence() {
        let dir = tempfile::tempdir().unwrap();
        let mut q = ReportQueue::open(dir.path()).unwrap();
        let trial = [UpgradeStep::Installed, UpgradeStep::Rebooting];
        assert!(q.push_steps(3, &trial, "2.0.0", "written", 10));
        assert!(
            !q.push_steps(3, &trial, "2.0.0", "written", 10),
            "taken once"
        );
        q.append(UpgradeStep::Probation, "2.0.0", "on trial", 12);
        assert!(q.push(4, UpgradeStep::Committed, "2.0.0", "", 15));
        let seen: Vec<(u64, i32)> = q
            .state()
            .reports
            .iter()
            .map(|r| (r.sequence, r.step))
            .collect();
        assert_eq!(
            seen,
            [
                (1, UpgradeStep::Installed as i32),
                (2, UpgradeStep::Rebooting as i32),
                (3, UpgradeStep::Probation as i32),
                (4, UpgradeStep::Committed as i32),
            ]
        );
        assert_eq!(q.state().last_history_seq, 4);
    }

    #[test]
    fn a_full_queue_drops_old_non_terminal_reports_first_and_counts_them() {
        let dir = tempfile::tempdir().unwrap();
        let mut q = ReportQueue::open(dir.path()).unwrap();
        q.push(1, UpgradeStep::Committed, "1.1.0", "", 1);
        for i in 2..=(MAX_QUEUED as u64 + 10) {
            q.push(i, UpgradeStep::Downloading, "2.0.0", &"x".repeat(5000), i);
        }
        let s = q.state();
        assert_eq!(s.reports.len(), MAX_QUEUED);
        assert_eq!(s.dropped, 10);
        assert_eq!(
            s.reports[0].step,
            UpgradeStep::Committed as i32,
            "terminal kept"
        );
        assert!(s.reports.iter().all(|r| r.reason.len() <= MAX_REASON));
    }

    #[test]
    fn a_corrupt_or_huge_file_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("queue.json"), b"{not json").unwrap();
        let e = ReportQueue::open(dir.path()).unwrap_err().to_string();
        assert!(e.contains("queue.json is not valid"), "{e}");
        std::fs::write(dir.path().join("queue.json"), vec![b' '; 300_000]).unwrap();
        let e = ReportQueue::open(dir.path()).unwrap_err().to_string();
        assert!(e.contains("larger than"), "{e}");
    }
}
