//! What the upgrade call, the rollback call and the probation controller share: the
//! machine's slots and boot store, the history, the status, and the one lock that
//! keeps their boot-store and history writes from interleaving.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use skerry_boot_state::{BootState, BootStore, SlotName, StoreSpec};
use skerry_medium::dir::HostDir;
use skerry_runtime::{Selector, State};
use skerryd_core::formats::{BUILD_FORMATS, UPGRADE_HISTORY};
use skerryd_core::{
    BoardDefinition, Context, EventLog, Layout, NewEvent, Power, PowerRequest, VarArea,
};

use crate::boot_script::Outcome;
use crate::history::{Entry, History, HistoryStore};
use crate::resources::{entry_id, UpgradeHistoryEntry, UpgradePhaseName, UpgradeStatus, STATUS_ID};
use crate::CONTROLLER;
use skerry_boot_state::grub::boot_script::Applied;

/// The shared part of the subsystem.
pub(crate) struct Machine {
    pub layout: Layout,
    pub board: BoardDefinition,
    pub spec: StoreSpec,
    pub booted: Option<SlotName>,
    pub area: VarArea,
    pub state: State,
    pub events: EventLog,
    pub power: Arc<dyn Power>,
    status: Mutex<UpgradeStatus>,
    /// Set while an upgrade runs.
    busy: AtomicBool,
    /// Serializes every boot-store and history write.
    io: Mutex<()>,
    /// Set once this start decided the booted slot's trial (or an operator did): no
    /// second decision, no upgrade.
    pub decided: AtomicBool,
}

impl std::fmt::Debug for Machine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Machine")
            .field("booted", &self.booted)
            .field("area", &self.area)
            .finish_non_exhaustive()
    }
}

/// Clears the busy flag when the upgrade ends, however it ends.
pub(crate) struct Busy(pub Arc<Machine>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.busy.store(false, Ordering::SeqCst);
    }
}

impl Machine {
    pub fn new(context: &Context) -> Self {
        let booted = context.boot.booted.clone();
        Machine {
            layout: context.layout.clone(),
            board: context.board.clone(),
            spec: context.boot.spec.clone(),
            booted: booted.clone(),
            area: context.area.clone(),
            state: context.state.clone(),
            events: context.events.clone(),
            power: context.power.clone(),
            status: Mutex::new(UpgradeStatus::idle(
                booted.as_ref().map_or("", SlotName::as_str),
            )),
            busy: AtomicBool::new(false),
            io: Mutex::new(()),
            decided: AtomicBool::new(false),
        }
    }

    /// Takes the one-upgrade-at-a-time flag; `None` if an upgrade runs.
    pub fn try_busy(self: &Arc<Self>) -> Option<Busy> {
        self.busy
            .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
            .ok()
            .map(|_| Busy(self.clone()))
    }

    /// Holds the write lock.
    pub fn lock_io(&self) -> MutexGuard<'_, ()> {
        self.io.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The history store, written at this start's version for the history format
    /// (the committed release's during a trial).
    pub fn history(&self) -> HistoryStore<HostDir> {
        HistoryStore::new(
            HostDir::new(self.layout.upgrade()),
            self.area.version_for(&UPGRADE_HISTORY),
        )
    }

    /// Opens the boot store.
    pub fn boot_store(&self) -> Result<Box<dyn BootStore>, skerry_boot_state::StoreError> {
        self.spec.open()
    }

    /// The boot state as persisted now.
    pub fn boot_state(&self) -> Result<BootState, skerry_boot_state::StoreError> {
        self.boot_store()?.load()
    }

    /// Whether reboots into a trial go through the firmware's one-shot tryboot.
    pub fn tryboot(&self) -> bool {
        matches!(self.spec, StoreSpec::Tryboot { .. })
    }

    /// Asks for a reboot.
    pub fn reboot(&self, tryboot: bool) {
        self.power.request(PowerRequest::Reboot { tryboot });
    }

    /// Changes the status, publishes it, and records an `upgrade.phase` event when the
    /// phase changed.
    pub fn set_status(&self, change: impl FnOnce(&mut UpgradeStatus)) {
        let (before, after) = {
            let mut status = self.status.lock().unwrap_or_else(|e| e.into_inner());
            let before = status.phase;
            change(&mut status);
            (before, status.clone())
        };
        if before != after.phase {
            self.events.push(
                NewEvent::new(
                    "upgrade.phase",
                    format!("upgrade: {}", phase_text(after.phase, &after.message)),
                )
                .about(
                    crate::resources::UPGRADE_NAMESPACE,
                    <UpgradeStatus as skerry_runtime::ResourceSpec>::TYPE,
                    STATUS_ID,
                )
                .with("phase", phase_str(after.phase))
                .with("release", &after.release)
                .with("target_slot", &after.target_slot),
            );
        }
        if let Err(e) = self.state.apply_owned(STATUS_ID, Some(CONTROLLER), after) {
            tracing::warn!(error = %e, "could not publish the upgrade status");
        }
    }

    /// Records an event about a history entry.
    pub fn entry_event(&self, kind: &str, entry: &Entry) {
        self.events.push(
            NewEvent::new(kind, entry.reason.clone())
                .about(
                    crate::resources::UPGRADE_NAMESPACE,
                    <UpgradeHistoryEntry as skerry_runtime::ResourceSpec>::TYPE,
                    &entry_id(entry.seq),
                )
                .with("step", entry.step.as_str())
                .with("release", &entry.release)
                .with("slot", &entry.slot),
        );
    }

    /// Mirrors the persisted history into resources.
    pub fn publish_history(&self, history: &History) {
        let mut keep = std::collections::BTreeSet::new();
        for entry in &history.entries {
            let id = entry_id(entry.seq);
            if let Err(e) =
                self.state
                    .apply_owned(&id, Some(CONTROLLER), UpgradeHistoryEntry(entry.clone()))
            {
                tracing::warn!(error = %e, "could not publish the upgrade history");
                return;
            }
            keep.insert(id);
        }
        let stale: Vec<String> = self
            .state
            .list::<UpgradeHistoryEntry>(&Selector::all())
            .unwrap_or_default()
            .into_iter()
            .map(|r| r.metadata.id.to_string())
            .filter(|id| !keep.contains(id))
            .collect();
        for id in stale {
            let _ = self
                .state
                .destroy::<UpgradeHistoryEntry>(&id, Some(CONTROLLER));
        }
    }

    /// Reads and mirrors the history; logs when it cannot be read.
    pub fn refresh_history(&self) -> Option<History> {
        match self.history().load() {
            Ok(history) => {
                self.publish_history(&history);
                Some(history)
            }
            Err(e) => {
                tracing::error!(error = %e, "could not read the upgrade history");
                None
            }
        }
    }

    /// Records this build's formats as the floor, when the booted slot is committed.
    pub fn record_floor(&self, committed_now: bool) {
        let area = if committed_now {
            VarArea {
                trial: None,
                ..self.area.clone()
            }
        } else {
            self.area.clone()
        };
        if let Err(e) = area.record_floor(&self.layout.var(), BUILD_FORMATS) {
            tracing::error!(error = %e, "could not record the format floor");
        }
    }

    /// Records the commit of `slot` in the installer's device state.
    pub fn record_install_commit(&self, slot: &SlotName) {
        if let Err(e) =
            skerry_installer::state::record_commit(&self.layout.installer(), slot.as_str())
        {
            tracing::error!(error = %e, slot = %slot, "could not record the commit in the installer's state");
        }
    }

    /// Puts the boot script the booted, committed slot carries on the ESP when it is
    /// newer (see [`crate::boot_script`]). A failure is logged and recorded as an
    /// event; it never undoes the commit (the old script still boots every slot).
    pub fn update_boot_script(&self) {
        if self.booted.is_none() {
            return;
        }
        let outcome = {
            let _io = self.lock_io();
            crate::boot_script::apply_carried(self.layout.root(), &self.spec)
        };
        match outcome {
            Ok(Outcome::Applied(Applied::Installed(script))) => {
                let message = format!(
                    "boot script version {} installed on the ESP as {}",
                    script.version, script.name
                );
                tracing::info!(%message);
                self.events.push(
                    NewEvent::new("upgrade.boot_script", message)
                        .with("version", script.version.to_string()),
                );
            }
            Ok(Outcome::KeptNewer { offered, installed }) => tracing::info!(
                offered,
                installed,
                "the ESP's boot script is newer than this release's; kept"
            ),
            Ok(_) => {}
            Err(e) => {
                let message = format!("could not put the release's boot script on the ESP: {e}");
                tracing::error!(%message);
                self.events
                    .push(NewEvent::new("upgrade.boot_script_failed", message));
            }
        }
    }

    /// Sets the phase and message.
    pub fn phase(&self, phase: UpgradePhaseName, message: impl Into<String>) {
        let message = message.into();
        self.set_status(|s| {
            s.phase = phase;
            s.message = message;
            s.done_bytes = 0;
            s.total_bytes = 0;
        });
    }
}

/// A phase as resources and events name it.
pub(crate) fn phase_str(phase: UpgradePhaseName) -> &'static str {
    match phase {
        UpgradePhaseName::Idle => "idle",
        UpgradePhaseName::RefreshingMetadata => "refreshing_metadata",
        UpgradePhaseName::Downloading => "downloading",
        UpgradePhaseName::Writing => "writing",
        UpgradePhaseName::Verifying => "verifying",
        UpgradePhaseName::TrialReady => "trial_ready",
        UpgradePhaseName::Probation => "probation",
        UpgradePhaseName::Committed => "committed",
        UpgradePhaseName::RollingBack => "rolling_back",
        UpgradePhaseName::Failed => "failed",
    }
}

fn phase_text(phase: UpgradePhaseName, message: &str) -> String {
    if message.is_empty() {
        phase_str(phase).to_owned()
    } else {
        format!("{}: {message}", phase_str(phase))
    }
}
