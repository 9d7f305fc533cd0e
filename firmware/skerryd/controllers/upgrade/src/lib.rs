//! skerryd's upgrade subsystem: install a release into the inactive slot, begin its
//! trial and reboot; on the trial, probation commits it when every critical health check
//! held for the configured time, or marks it bad and reboots into the known-good slot;
//! the upgrade history records every step and survives power loss.
//!
//! The refusals (each a FAILED_PRECONDITION naming why): an upgrade during probation,
//! without an update source, into the last known-good or the booted slot, while another
//! upgrade runs, and of a release this machine rolled back from unless forced. A
//! rollback needs another good slot.
//!
//! # Layout
//! - [`history`]: the persisted history (versioned, written at the floor's version
//!   during a trial, in the main `/var` area so the old slot reads it).
//! - [`flow`]: the persistent steps (begin a trial, commit, fail, settle at start,
//!   rollback), ordered so a power cut between any two writes is finished at the next
//!   start; synchronous, over any [`Directory`](skerry_medium::dir::Directory).
//! - [`boot_script`]: the boot script a committed release carries, put on the ESP.
//! - [`resources`]: `UpgradeStatus` and the history mirror (namespace `upgrade`).
//! - `machine`: what the calls and the controller share.
//! - `install`: one upgrade on a blocking thread with the installer engine.
//! - `ops`: [`UpgradeOps`] (refusals, streams).
//! - `probation`: the controller (its rule is in its module docs).

pub mod boot_script;
pub mod flow;
pub mod history;
mod install;
mod machine;
mod ops;
mod probation;
pub mod resources;
pub mod verity;

use std::sync::Arc;

use skerry_runtime::Runtime;
use skerryd_core::{Context, UpgradeOps};

pub use probation::{DEFAULT_PROBATION, MAX_PROBATION};

use crate::flow::Settled;
use crate::machine::Machine;
use crate::probation::{Probation, Trial};
use crate::resources::UpgradePhaseName;

/// The controller's name (owner of the subsystem's resources).
pub const CONTROLLER: &str = "upgrade";

/// Registers the probation controller on `runtime` and returns what the API calls for
/// Upgrade and Rollback. First settles what a power cut or the last reboot left between
/// the boot store and the history (finishing a commit or a rollback, recording a trial
/// the bootloader gave up), and on a committed slot records this build's formats as the
/// floor.
pub fn register(runtime: &mut Runtime, context: &Context) -> anyhow::Result<Arc<dyn UpgradeOps>> {
    if let Some(slot) = &context.boot.booted {
        context.board.check_booted(&context.layout, slot.as_str())?;
    }
    let machine = Arc::new(Machine::new(context));
    let settled = machine
        .boot_store()
        .map_err(|e| e.to_string())
        .and_then(|mut store| {
            flow::settle(
                &mut machine.history(),
                store.as_mut(),
                machine.booted.as_ref(),
            )
            .map_err(|e| e.to_string())
        });
    let mut trial = None;
    let mut reboot_at_start = false;
    // A start that cannot settle (an unreadable store or history) still serves the
    // API and, on a trial, still runs probation: the daemon must not stay down.
    let settled = settled.unwrap_or_else(|e| {
        let message = format!("could not settle the upgrade state at start: {e}");
        tracing::error!(%message);
        machine.events.push(skerryd_core::NewEvent::new(
            "upgrade.error",
            message.clone(),
        ));
        machine.phase(UpgradePhaseName::Failed, message);
        match &machine.booted {
            Some(slot) if context.boot.booted_on_trial() => {
                Settled::Probation(history::PendingTrial {
                    slot: slot.to_string(),
                    release: String::new(),
                    from: String::new(),
                    stage: history::Stage::Trial,
                    failure: None,
                    failure_by: None,
                    forced: false,
                })
            }
            _ => Settled::Unsettled,
        }
    });
    match settled {
        Settled::Unsettled => {}
        Settled::Idle => machine.set_status(|_| {}),
        Settled::Probation(pending) => {
            if let Some(slot) = machine.booted.clone() {
                machine.set_status(|s| {
                    s.phase = UpgradePhaseName::Probation;
                    s.release = pending.release.clone();
                    s.target_slot = slot.to_string();
                    s.message = format!("slot {slot} is on trial: probation begins");
                });
                trial = Some(Trial::new(pending, slot));
            }
        }
        Settled::FailedBeforeCut(entry) => {
            machine
                .decided
                .store(true, std::sync::atomic::Ordering::SeqCst);
            machine.entry_event("upgrade.rolled_back", &entry);
            settled_status(&machine, UpgradePhaseName::RollingBack, &entry);
            reboot_at_start = true;
        }
        Settled::Committed(entry) => {
            if let Some(slot) = &machine.booted {
                machine.record_install_commit(slot);
            }
            machine.entry_event("upgrade.committed", &entry);
            settled_status(&machine, UpgradePhaseName::Committed, &entry);
        }
        Settled::RolledBack(entry) => {
            machine.entry_event("upgrade.rolled_back", &entry);
            settled_status(&machine, UpgradePhaseName::Idle, &entry);
        }
        Settled::Interrupted(entry) => {
            machine.entry_event("upgrade.interrupted", &entry);
            settled_status(&machine, UpgradePhaseName::Failed, &entry);
        }
    }
    if context.area.trial.is_none() && !context.boot.booted_on_trial() {
        machine.record_floor(false);
        // Finishes a boot script update a power cut interrupted after the commit.
        machine.update_boot_script();
    }
    machine.refresh_history();
    runtime.register(Probation::new(machine.clone(), trial, reboot_at_start))?;
    Ok(Arc::new(ops::Upgrades { machine }))
}

/// The status a settled history entry leaves: its phase, release, slot and reason.
fn settled_status(machine: &Machine, phase: UpgradePhaseName, entry: &history::Entry) {
    machine.set_status(|s| {
        s.phase = phase;
        s.release = entry.release.clone();
        s.target_slot = entry.slot.clone();
        s.message = entry.reason.clone();
    });
}
