//! One upgrade, run on a blocking thread: refresh the signed metadata and pick the
//! release, refuse one this machine rolled back from, install it into the inactive
//! slot with the installer engine (the booted slot as seed; the target marked bad in
//! the boot store before its first byte is written; an interrupted install of the same
//! release resumes), begin the trial, and ask for the reboot.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use skerry_api::pb;
use skerry_boot_state::{BootState, SlotName, SlotStatus, StoreSpec};
use skerry_installer::guard::ActivationError;
use skerry_installer::refresh::refresh;
use skerry_installer::select::{select, Selector};
use skerry_installer::state::{load_root, repository_dir, save_root};
use skerry_installer::transport::Fetcher;
use skerry_installer::{
    install, open_url, DeviceState, Downgrade, InstallOptions, InstallReport, Progress, RetryLog,
    RetryPolicy, SlotActivation,
};
use skerryd_core::layout::read_small;
use tokio::sync::mpsc;
use tonic::Status;

use crate::flow::{self, TrialPlan};
use crate::history::{Decider, NewEntry, Step};
use crate::machine::{Busy, Machine};
use crate::resources::UpgradePhaseName;

/// How long a connection may deliver nothing before it is dropped and resumed.
pub const STALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Whether a release this machine rolled back from may be installed again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reinstall {
    /// Refused, naming why it was rolled back.
    RefuseRolledBack,
    /// The operator forced it; recorded in the history.
    AllowRolledBack,
}

/// What the checks before the stream settled.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub repository: String,
    pub trusted_root: PathBuf,
    pub board: String,
    pub channel: String,
    pub version: Option<semver::Version>,
    pub reinstall: Reinstall,
    pub booted: SlotName,
    pub target: SlotName,
    pub seed_image: PathBuf,
    pub target_image: PathBuf,
}

/// The stream's sender, with the release and slot every message carries.
struct Sender {
    tx: mpsc::Sender<Result<pb::UpgradeProgress, Status>>,
    release: Mutex<String>,
    target: String,
}

/// Room kept in the channel for phase changes and the final answer: byte progress is
/// dropped rather than fill it.
const RESERVED: usize = 16;

impl Sender {
    fn progress(&self, phase: pb::UpgradePhase, done: u64, total: u64, message: &str, must: bool) {
        let item = pb::UpgradeProgress {
            phase: phase as i32,
            done_bytes: done,
            total_bytes: total,
            release_version: self
                .release
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
            target_slot: self.target.clone(),
            message: message.to_owned(),
        };
        if must {
            let _ = self.tx.blocking_send(Ok(item));
        } else if self.tx.capacity() > RESERVED {
            let _ = self.tx.try_send(Ok(item));
        }
    }

    fn fail(&self, status: Status) {
        let _ = self.tx.blocking_send(Err(status));
    }
}

/// The installer's progress as the API's phases.
struct Reporter<'a> {
    machine: &'a Machine,
    sender: &'a Sender,
    current: Mutex<(pb::UpgradePhase, u64, u64, u64)>,
}

fn api_phase(name: &str) -> pb::UpgradePhase {
    match name {
        "metadata" => pb::UpgradePhase::RefreshingMetadata,
        "writing" => pb::UpgradePhase::Writing,
        // Reading the seed (and a resumed slot) to plan the delta, and fetching.
        _ => pb::UpgradePhase::Downloading,
    }
}

fn status_phase(phase: pb::UpgradePhase) -> UpgradePhaseName {
    match phase {
        pb::UpgradePhase::RefreshingMetadata => UpgradePhaseName::RefreshingMetadata,
        pb::UpgradePhase::Downloading => UpgradePhaseName::Downloading,
        pb::UpgradePhase::Writing => UpgradePhaseName::Writing,
        pb::UpgradePhase::Verifying => UpgradePhaseName::Verifying,
        pb::UpgradePhase::TrialReady => UpgradePhaseName::TrialReady,
        pb::UpgradePhase::Unspecified => UpgradePhaseName::Idle,
    }
}

impl Progress for Reporter<'_> {
    fn phase(&self, name: &str, total: u64) {
        let phase = api_phase(name);
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = (phase, 0, total, 0);
        self.sender.progress(phase, 0, total, name, true);
        self.machine.set_status(|s| {
            s.phase = status_phase(phase);
            s.done_bytes = 0;
            s.total_bytes = total;
            s.message = name.to_owned();
        });
    }

    fn advance(&self, bytes: u64) {
        let (phase, done, total, report) = {
            let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
            current.1 = current.1.saturating_add(bytes);
            let step = (current.2 / 20).max(1 << 20);
            let report = current.1 >= current.3.saturating_add(step);
            if report {
                current.3 = current.1;
            }
            (current.0, current.1, current.2, report)
        };
        if report {
            self.sender.progress(phase, done, total, "", false);
            self.machine.set_status(|s| {
                s.done_bytes = done;
                s.total_bytes = total;
            });
        }
    }

    fn warn(&self, message: &str) {
        tracing::warn!(message, "installer");
        self.sender.progress(
            self.current.lock().unwrap_or_else(|e| e.into_inner()).0,
            0,
            0,
            message,
            false,
        );
    }
}

/// Marks the target slot bad in the boot store before the installer writes it.
struct MarkBad {
    spec: StoreSpec,
    slot: SlotName,
    machine: Arc<Machine>,
}

impl SlotActivation for MarkBad {
    fn deactivate(&mut self) -> Result<(), ActivationError> {
        let _io = self.machine.lock_io();
        let mut store = self.spec.open()?;
        let mut state: BootState = store.load()?;
        if state.status(&self.slot)? != SlotStatus::Bad {
            state.mark_bad(&self.slot)?;
            store.commit(&state)?;
        }
        Ok(())
    }
}

/// The largest trusted root read.
const MAX_ROOT: u64 = skerryd_core::layout::MAX_SMALL_FILE;

fn precondition(message: impl Into<String>) -> Status {
    Status::failed_precondition(message.into())
}

/// Refreshes the metadata and picks the release the request names (or the newest).
fn resolve(
    plan: &Plan,
    trusted_root: &[u8],
    state_dir: &std::path::Path,
) -> Result<semver::Version, Status> {
    let transport = open_url(&plan.repository, STALL_TIMEOUT)
        .map_err(|e| precondition(format!("the update source {}: {e}", plan.repository)))?;
    let fetcher = Fetcher::new(transport, RetryPolicy::default());
    let unavailable = |e: skerry_installer::InstallError| {
        Status::unavailable(format!(
            "refreshing the signed metadata from {}: {e}",
            plan.repository
        ))
    };
    let repo_dir = repository_dir(state_dir, trusted_root).map_err(unavailable)?;
    let mut state = DeviceState::load(&repo_dir).map_err(unavailable)?;
    let mut root = load_root(&repo_dir, trusted_root).map_err(unavailable)?;
    state.forget_rotated(root.root());
    let now = state.trusted_now(SystemTime::now());
    let verified = refresh(&fetcher, &mut root, &mut state.versions, now).map_err(unavailable)?;
    state.record_keys(root.root());
    state.raise_floor(now);
    save_root(&repo_dir, &root).map_err(unavailable)?;
    state.save(&repo_dir).map_err(unavailable)?;
    let selected = select(
        verified.targets(),
        &Selector {
            board: &plan.board,
            channel: Some(plan.channel.as_str()),
            version: plan.version.as_ref(),
        },
    )
    .map_err(|e| precondition(format!("no release to install: {e}")))?;
    Ok(selected.version)
}

/// Runs the upgrade; every outcome goes to the stream. True when the trial is ready and
/// the caller should reboot into it (after the stream ended).
pub(crate) fn run(
    machine: Arc<Machine>,
    plan: Plan,
    tx: mpsc::Sender<Result<pb::UpgradeProgress, Status>>,
    busy: Busy,
) -> bool {
    let sender = Sender {
        tx,
        release: Mutex::new(
            plan.version
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
        ),
        target: plan.target.to_string(),
    };
    machine.set_status(|s| {
        s.phase = UpgradePhaseName::RefreshingMetadata;
        s.target_slot = plan.target.to_string();
        s.release = sender.release.lock().map(|r| r.clone()).unwrap_or_default();
        s.message = format!("refreshing the signed metadata from {}", plan.repository);
        s.done_bytes = 0;
        s.total_bytes = 0;
    });
    sender.progress(
        pb::UpgradePhase::RefreshingMetadata,
        0,
        0,
        "refreshing the signed metadata",
        true,
    );
    let outcome = attempt(&machine, &plan, &sender);
    if let Err(status) = &outcome {
        machine.phase(UpgradePhaseName::Failed, status.message().to_owned());
    }
    // Free before the last answer: a client that starts again at once is not refused.
    drop(busy);
    match outcome {
        Ok(message) => {
            sender.progress(pb::UpgradePhase::TrialReady, 0, 0, &message, true);
            true
        }
        Err(status) => {
            sender.fail(status);
            false
        }
    }
}

/// The upgrade up to the trial; returns the message of its last answer.
fn attempt(machine: &Arc<Machine>, plan: &Plan, sender: &Sender) -> Result<String, Status> {
    let root_bytes = read_small(&plan.trusted_root)
        .map_err(|e| precondition(format!("the update source's trusted root: {e}")))?;
    if root_bytes.len() as u64 > MAX_ROOT {
        return Err(precondition(format!(
            "the trusted root {} is larger than {MAX_ROOT} bytes",
            plan.trusted_root.display()
        )));
    }
    let state_dir = machine.layout.installer();
    let version = resolve(plan, &root_bytes, &state_dir)?;
    let release = version.to_string();
    *sender.release.lock().unwrap_or_else(|e| e.into_inner()) = release.clone();
    machine.set_status(|s| s.release = release.clone());
    let forced = {
        let _io = machine.lock_io();
        let mut history = machine.history();
        let mut h = history
            .load()
            .map_err(|e| Status::internal(e.to_string()))?;
        if h.is_rolled_back(&release) && plan.reinstall == Reinstall::RefuseRolledBack {
            return Err(refused_rolled_back(&release, &h));
        }
        let forced = h.is_rolled_back(&release);
        let entry = h.record(NewEntry {
            step: Step::InstallStarted,
            release: &release,
            slot: plan.target.as_str(),
            reason: if forced {
                format!("installing release {release} into slot {}, forced although this machine rolled back from it", plan.target)
            } else {
                format!("installing release {release} into slot {}", plan.target)
            },
            by: Decider::Upgrade,
            forced,
        });
        history
            .save(&h)
            .map_err(|e| Status::internal(e.to_string()))?;
        machine.entry_event("upgrade.install_started", &entry);
        machine.publish_history(&h);
        forced
    };
    let transport = open_url(&plan.repository, STALL_TIMEOUT)
        .map_err(|e| precondition(format!("the update source {}: {e}", plan.repository)))?;
    let options = InstallOptions {
        transport,
        trusted_root: root_bytes,
        state_dir: state_dir.clone(),
        board: plan.board.clone(),
        channel: Some(plan.channel.clone()),
        version: Some(version.clone()),
        slot: plan.target_image.clone(),
        slot_size: None,
        slot_name: Some(plan.target.to_string()),
        seed: Some(plan.seed_image.clone()),
        booted: Some(plan.seed_image.clone()),
        downgrade: Downgrade::Refuse,
        retry: RetryPolicy::default(),
        retry_log: RetryLog::new(|message| tracing::warn!(message, "upgrade download retry")),
        min_progress: Default::default(),
        clock: SystemTime::now(),
    };
    let reporter = Reporter {
        machine,
        sender,
        current: Mutex::new((pb::UpgradePhase::RefreshingMetadata, 0, 0, 0)),
    };
    let mut activation = MarkBad {
        spec: machine.spec.clone(),
        slot: plan.target.clone(),
        machine: machine.clone(),
    };
    let report: InstallReport = match install(&options, &mut activation, &reporter) {
        Ok(report) => report,
        Err(e) => {
            let _io = machine.lock_io();
            let mut history = machine.history();
            if let Ok(mut h) = history.load() {
                let entry = h.record(NewEntry {
                    step: Step::InstallFailed,
                    release: &release,
                    slot: plan.target.as_str(),
                    reason: format!(
                        "installing release {release} into slot {} failed: {e}",
                        plan.target
                    ),
                    by: Decider::Upgrade,
                    forced,
                });
                if history.save(&h).is_ok() {
                    machine.entry_event("upgrade.install_failed", &entry);
                    machine.publish_history(&h);
                }
            }
            return Err(match e {
                skerry_installer::InstallError::Downgrade { .. } => precondition(e.to_string()),
                other => Status::internal(format!("installing release {release}: {other}")),
            });
        }
    };
    // The root hash goes beside the boot state before the trial can begin.
    let verity = crate::verity::value_for(
        machine.board.verified_root,
        &release,
        report.verity.as_deref(),
    )
    .and_then(|value| {
        let _io = machine.lock_io();
        crate::verity::write(&machine.spec, &plan.target, value.as_deref())
    });
    if let Err(reason) = verity {
        let _io = machine.lock_io();
        let mut history = machine.history();
        if let Ok(mut h) = history.load() {
            let entry = h.record(NewEntry {
                step: Step::InstallFailed,
                release: &release,
                slot: plan.target.as_str(),
                reason: format!("slot {} stays bad: {reason}", plan.target),
                by: Decider::Upgrade,
                forced,
            });
            if history.save(&h).is_ok() {
                machine.entry_event("upgrade.install_failed", &entry);
                machine.publish_history(&h);
            }
        }
        return Err(precondition(reason));
    }
    let verified = format!(
        "slot {} read back: {} bytes, blake3 {} matches the signed release ({} chunks reused from slot {}, {} fetched{})",
        plan.target,
        report.bytes_written,
        report.blake3,
        report.chunks_reused,
        plan.booted,
        report.chunks_fetched,
        if report.resumed { ", resumed" } else { "" }
    );
    machine.set_status(|s| {
        s.phase = UpgradePhaseName::Verifying;
        s.done_bytes = report.bytes_written;
        s.total_bytes = report.bytes_written;
        s.message = verified.clone();
    });
    sender.progress(
        pb::UpgradePhase::Verifying,
        report.bytes_written,
        report.bytes_written,
        &verified,
        true,
    );
    let state = {
        let _io = machine.lock_io();
        let mut store = machine
            .boot_store()
            .map_err(|e| Status::internal(format!("opening the boot store: {e}")))?;
        let mut history = machine.history();
        let state = flow::begin_trial(
            &mut history,
            store.as_mut(),
            &TrialPlan {
                slot: &plan.target,
                release: &release,
                from: &plan.booted,
                forced,
            },
        )
        .map_err(|e| {
            Status::internal(format!("beginning the trial of slot {}: {e}", plan.target))
        })?;
        if let Ok(h) = history.load() {
            if let Some(entry) = h.entries.last() {
                machine.entry_event("upgrade.trial_begun", entry);
            }
            machine.publish_history(&h);
        }
        state
    };
    let message = format!(
        "the trial of release {release} on slot {} has begun ({} attempts); rebooting into it",
        plan.target,
        state.tries()
    );
    machine.phase(UpgradePhaseName::TrialReady, message.clone());
    Ok(message)
}

/// The refusal of a release this machine rolled back from, naming why it did.
pub(crate) fn refused_rolled_back(release: &str, h: &crate::history::History) -> Status {
    let why = h
        .entries
        .iter()
        .rev()
        .find(|e| e.step == Step::RolledBack && e.release == release)
        .map(|e| format!(" ({})", e.reason))
        .unwrap_or_default();
    precondition(format!(
        "refused: this machine rolled back from release {release}{why}; upgrade with force to install it again"
    ))
}
