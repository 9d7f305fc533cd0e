//! The upgrade flow's persistent steps: each one writes the boot store and the upgrade
//! history in an order that a power cut between any two writes can only leave in a
//! state [`settle`] finishes at the next start. Everything here is synchronous and works
//! on a [`BootStore`] and a [`HistoryStore`] over any [`Directory`], so the power-cut
//! test runs exactly this code over the lossy medium.
//!
//! The orders, and why:
//! - **Beginning a trial**: the history records the trial (stage `beginning`) before
//!   the boot store begins it, then the stage becomes `trial`. Coming back on the old
//!   slot with the target still bad and the stage `beginning` means the trial never
//!   began ([`Step::Interrupted`]).
//! - **Committing**: the boot store marks the slot good first; the history follows. A
//!   slot found good with its trial still pending was committed before a cut.
//! - **Failing a trial**: the history records the failure and its reason first, then
//!   the boot store marks the slot bad, then the history closes the trial. A cut before
//!   the mark leaves the slot on trial: the next start of it finds the failure recorded
//!   and finishes the rollback instead of running probation again.
//! - The machine started on the known-good slot while the history has a trial that
//!   had begun and no failure: the bootloader gave it up, its attempts ran out.

use skerry_boot_state::{BootError, BootState, BootStore, SlotName, SlotStatus, StoreError};
use skerry_medium::dir::Directory;

use crate::history::{
    Decider, Entry, HistoryError, HistoryStore, NewEntry, PendingTrial, Stage, Step,
};

/// Why a step could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    /// The boot store failed.
    #[error("the boot store: {0}")]
    Store(#[from] StoreError),
    /// The boot state refused the change.
    #[error("the boot state refused: {0}")]
    Boot(#[from] BootError),
    /// The history failed.
    #[error(transparent)]
    History(#[from] HistoryError),
}

/// A trial about to begin.
#[derive(Debug, Clone)]
pub struct TrialPlan<'a> {
    /// The freshly written and verified slot.
    pub slot: &'a SlotName,
    /// Its release.
    pub release: &'a str,
    /// The booted, known-good slot.
    pub from: &'a SlotName,
    /// Forced over a rollback.
    pub forced: bool,
}

/// Begins the trial of a slot whose install was verified; returns the boot state
/// committed (for the reboot request).
pub fn begin_trial<D: Directory>(
    history: &mut HistoryStore<D>,
    boot: &mut dyn BootStore,
    plan: &TrialPlan<'_>,
) -> Result<BootState, FlowError> {
    let mut h = history.load()?;
    h.pending = Some(PendingTrial {
        slot: plan.slot.to_string(),
        release: plan.release.to_owned(),
        from: plan.from.to_string(),
        stage: Stage::Beginning,
        failure: None,
        failure_by: None,
        forced: plan.forced,
    });
    history.save(&h)?;
    let mut state = boot.load()?;
    state.begin_trial(plan.slot)?;
    boot.commit(&state)?;
    if let Some(pending) = &mut h.pending {
        pending.stage = Stage::Trial;
    }
    h.record(NewEntry {
        step: Step::TrialBegun,
        release: plan.release,
        slot: plan.slot.as_str(),
        reason: format!(
            "release {} written to slot {} and verified; its trial begins, falling back to slot {}",
            plan.release, plan.slot, plan.from
        ),
        by: Decider::Upgrade,
        forced: plan.forced,
    });
    history.save(&h)?;
    Ok(state)
}

/// Commits the booted slot on trial: marks it good, then records it.
pub fn commit<D: Directory>(
    history: &mut HistoryStore<D>,
    boot: &mut dyn BootStore,
    slot: &SlotName,
    reason: &str,
) -> Result<Entry, FlowError> {
    let mut state = boot.load()?;
    if state.status(slot)? != SlotStatus::Good {
        state.mark_good(slot)?;
        boot.commit(&state)?;
    }
    finish_commit(history, slot, reason)
}

fn finish_commit<D: Directory>(
    history: &mut HistoryStore<D>,
    slot: &SlotName,
    reason: &str,
) -> Result<Entry, FlowError> {
    let mut h = history.load()?;
    let pending = h.pending.take();
    let release = pending
        .as_ref()
        .map_or("", |p| p.release.as_str())
        .to_owned();
    let forced = pending.as_ref().is_some_and(|p| p.forced);
    let entry = h.record(NewEntry {
        step: Step::Committed,
        release: &release,
        slot: slot.as_str(),
        reason: reason.to_owned(),
        by: Decider::Probation,
        forced,
    });
    history.save(&h)?;
    Ok(entry)
}

/// Fails the trial of `slot`: records why, marks it bad, closes the trial, remembers
/// its release as rolled back. The caller reboots.
pub fn fail_trial<D: Directory>(
    history: &mut HistoryStore<D>,
    boot: &mut dyn BootStore,
    slot: &SlotName,
    reason: &str,
    by: Decider,
) -> Result<Entry, FlowError> {
    let mut h = history.load()?;
    match &mut h.pending {
        Some(pending) if pending.slot == slot.as_str() => {
            pending.failure = Some(reason.to_owned());
            pending.failure_by = Some(by);
        }
        _ => {
            h.pending = Some(PendingTrial {
                slot: slot.to_string(),
                release: String::new(),
                from: String::new(),
                stage: Stage::Trial,
                failure: Some(reason.to_owned()),
                failure_by: Some(by),
                forced: false,
            });
        }
    }
    history.save(&h)?;
    let mut state = boot.load()?;
    if state.status(slot)? != SlotStatus::Bad {
        state.mark_bad(slot)?;
        boot.commit(&state)?;
    }
    finish_rollback(history, slot)
}

/// Closes a failed trial in the history with the reason it recorded.
fn finish_rollback<D: Directory>(
    history: &mut HistoryStore<D>,
    slot: &SlotName,
) -> Result<Entry, FlowError> {
    let mut h = history.load()?;
    let pending = h.pending.take();
    let (release, reason, by, forced) = match &pending {
        Some(p) => (
            p.release.clone(),
            p.failure.clone().unwrap_or_else(|| bootloader_reason(p)),
            p.failure_by.unwrap_or(Decider::Bootloader),
            p.forced,
        ),
        None => (
            String::new(),
            "rolled back".to_owned(),
            Decider::Operator,
            false,
        ),
    };
    h.add_rolled_back(&release);
    let entry = h.record(NewEntry {
        step: Step::RolledBack,
        release: &release,
        slot: slot.as_str(),
        reason,
        by,
        forced,
    });
    history.save(&h)?;
    Ok(entry)
}

fn bootloader_reason(p: &PendingTrial) -> String {
    format!(
        "rolled back by the bootloader: the trial of release {} on slot {} used up its boot attempts without being committed",
        p.release, p.slot
    )
}

/// What the start found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settled {
    /// No upgrade in flight.
    Idle,
    /// The booted slot is on trial: probation decides.
    Probation(PendingTrial),
    /// The booted slot's trial had been judged failed before a power cut: the rollback
    /// was finished now (the slot is bad) and the machine must reboot.
    FailedBeforeCut(Entry),
    /// A commit a power cut interrupted was finished.
    Committed(Entry),
    /// The machine came back on the known-good slot; the trial was closed as rolled
    /// back (by probation, an operator, or the bootloader).
    RolledBack(Entry),
    /// The trial never began.
    Interrupted(Entry),
    /// The start could not settle (the caller's state when the store or the history
    /// cannot be read); never returned by [`settle`].
    Unsettled,
}

/// At start: finishes whatever a power cut or a reboot left between the boot store and
/// the history, and says whether the booted slot is in probation.
pub fn settle<D: Directory>(
    history: &mut HistoryStore<D>,
    boot: &mut dyn BootStore,
    booted: Option<&SlotName>,
) -> Result<Settled, FlowError> {
    let Some(booted) = booted else {
        return Ok(Settled::Idle);
    };
    let mut h = history.load()?;
    let mut state = boot.load()?;
    let status = state.status(booted)?;
    let Some(pending) = h.pending.clone() else {
        if let SlotStatus::Trial { .. } = status {
            // A trial begun outside the daemon (`skerryctl boot begin-trial`).
            let other = state
                .order()
                .find(|s| *s != booted)
                .map(|s| s.to_string())
                .unwrap_or_default();
            let pending = PendingTrial {
                slot: booted.to_string(),
                release: String::new(),
                from: other,
                stage: Stage::Trial,
                failure: None,
                failure_by: None,
                forced: false,
            };
            h.pending = Some(pending.clone());
            history.save(&h)?;
            return Ok(Settled::Probation(pending));
        }
        return Ok(Settled::Idle);
    };
    if pending.slot == booted.as_str() {
        return match status {
            SlotStatus::Trial { .. } if pending.failure.is_some() => {
                Ok(Settled::FailedBeforeCut(fail_trial(
                    history,
                    boot,
                    booted,
                    pending.failure.as_deref().unwrap_or_default(),
                    pending.failure_by.unwrap_or(Decider::Probation),
                )?))
            }
            SlotStatus::Trial { .. } => {
                if pending.stage == Stage::Beginning {
                    if let Some(p) = &mut h.pending {
                        p.stage = Stage::Trial;
                    }
                    history.save(&h)?;
                }
                Ok(Settled::Probation(pending))
            }
            SlotStatus::Good => Ok(Settled::Committed(finish_commit(
                history,
                booted,
                "committed after probation (finished at the next start)",
            )?)),
            SlotStatus::Bad => {
                // Started as its last attempt by a bootloader that marks it bad first
                // (ChromeOS vboot): it can no longer be committed.
                if h.pending.as_ref().is_some_and(|p| p.failure.is_none()) {
                    if let Some(p) = &mut h.pending {
                        p.failure = Some(format!(
                            "rolled back by the bootloader: it started slot {booted} for the last attempt of its trial and marked it bad"
                        ));
                        p.failure_by = Some(Decider::Bootloader);
                    }
                    history.save(&h)?;
                }
                Ok(Settled::FailedBeforeCut(finish_rollback(history, booted)?))
            }
        };
    }
    let target: SlotName = match pending.slot.parse() {
        Ok(slot) => slot,
        Err(_) => {
            // Not a slot of this board: nothing to settle but the record.
            h.pending = None;
            history.save(&h)?;
            return Ok(Settled::Idle);
        }
    };
    let target_status = state.status(&target).ok();
    if pending.stage == Stage::Beginning
        && pending.failure.is_none()
        && target_status == Some(SlotStatus::Bad)
    {
        h.pending = None;
        let entry = h.record(NewEntry {
            step: Step::Interrupted,
            release: &pending.release,
            slot: &pending.slot,
            reason: format!(
                "the machine restarted on slot {booted} before the trial of release {} on slot {} began; nothing was tried",
                pending.release, pending.slot
            ),
            by: Decider::Upgrade,
            forced: pending.forced,
        });
        history.save(&h)?;
        return Ok(Settled::Interrupted(entry));
    }
    if let Some(SlotStatus::Trial { tries_left }) = target_status {
        // Still on trial behind the slot that started: end it, staying here.
        if status == SlotStatus::Good {
            state.mark_good(booted)?;
            boot.commit(&state)?;
        }
        if tries_left == state.tries() && pending.failure.is_none() {
            // Not one attempt used: the trial was never started (a Raspberry Pi that
            // lost its one-shot tryboot flag to a power cut, or rebooted plainly).
            h = history.load()?;
            h.pending = None;
            let entry = h.record(NewEntry {
                step: Step::Interrupted,
                release: &pending.release,
                slot: &pending.slot,
                reason: format!(
                    "the machine started slot {booted} again before the trial of release {} on slot {} was attempted; the trial was ended, nothing was tried",
                    pending.release, pending.slot
                ),
                by: Decider::Bootloader,
                forced: pending.forced,
            });
            history.save(&h)?;
            return Ok(Settled::Interrupted(entry));
        }
    }
    Ok(Settled::RolledBack(finish_rollback(history, &target)?))
}

/// Why an operator's rollback was refused.
#[derive(Debug, thiserror::Error)]
pub enum RollbackRefused {
    /// No other slot is good.
    #[error("refused: no other slot is known-good to roll back to ({0})")]
    NoGoodSlot(String),
    /// The step failed.
    #[error(transparent)]
    Flow(#[from] FlowError),
}

/// An operator's rollback: marks the booted slot bad when another slot is good,
/// records why, and returns the slot the machine reboots into.
pub fn rollback<D: Directory>(
    history: &mut HistoryStore<D>,
    boot: &mut dyn BootStore,
    booted: &SlotName,
    release: &str,
    reason: &str,
) -> Result<SlotName, RollbackRefused> {
    let state = boot.load().map_err(FlowError::from)?;
    let target = state
        .slots()
        .iter()
        .find(|s| s.name != *booted && s.status == SlotStatus::Good)
        .map(|s| s.name.clone())
        .ok_or_else(|| {
            RollbackRefused::NoGoodSlot(
                state
                    .slots()
                    .iter()
                    .map(|s| format!("slot {} is {}", s.name, status_name(s.status)))
                    .collect::<Vec<_>>()
                    .join(", "),
            )
        })?;
    let reason = if reason.trim().is_empty() {
        "rolled back by an operator (no reason given)".to_owned()
    } else {
        format!("rolled back by an operator: {reason}")
    };
    if let SlotStatus::Trial { .. } = state.status(booted).map_err(FlowError::from)? {
        fail_trial(history, boot, booted, &reason, Decider::Operator)?;
        return Ok(target);
    }
    let mut h = history.load().map_err(FlowError::from)?;
    h.add_rolled_back(release);
    h.record(NewEntry {
        step: Step::RolledBack,
        release,
        slot: booted.as_str(),
        reason,
        by: Decider::Operator,
        forced: false,
    });
    history.save(&h).map_err(FlowError::from)?;
    let mut state = boot.load().map_err(FlowError::from)?;
    state.mark_bad(booted).map_err(FlowError::from)?;
    boot.commit(&state).map_err(FlowError::from)?;
    Ok(target)
}

/// A status as people read it.
pub fn status_name(status: SlotStatus) -> String {
    match status {
        SlotStatus::Good => "good".into(),
        SlotStatus::Trial { tries_left } => format!("on trial ({tries_left} attempts left)"),
        SlotStatus::Bad => "bad".into(),
    }
}
