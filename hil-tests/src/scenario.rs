//! The A/B stories, run on a board. Each step is reported with the boot state after it,
//! so the demo can print it and the tests can check it.

use skerry_boot_state::{BootState, SlotName};

use crate::board::{BoardError, SimBoard, BROKEN_IMAGE, HEALTHY_IMAGE};

/// One step of a story and where the board stands after it.
#[derive(Debug, Clone)]
pub struct Step {
    /// What happened, in words.
    pub what: String,
    /// The persisted boot state afterwards.
    pub state: BootState,
    /// The slot running afterwards, if any.
    pub running: Option<SlotName>,
}

/// How many power-ons a failed trial may take before we call the rollback broken.
const MAX_BOOTS_PER_TRIAL: usize = 20;

fn step(board: &SimBoard, what: String, report: &mut dyn FnMut(Step)) -> Result<(), BoardError> {
    report(Step {
        what,
        state: board.boot_state()?,
        running: board.running().cloned(),
    });
    Ok(())
}

/// Upgrade → trial → commit: boot the good slot, install a healthy image into the
/// inactive slot, reboot into its trial, pass health checks, mark it good, and reboot
/// once more to show a good slot starts without using attempts. Returns the new slot.
pub fn upgrade_and_commit(
    board: &mut SimBoard,
    report: &mut dyn FnMut(Step),
) -> Result<SlotName, BoardError> {
    let first = board.power_on()?;
    step(
        board,
        format!("power on: the bootloader starts slot {first}"),
        report,
    )?;
    let target = board.inactive_slot()?;
    board.install(&target, &[HEALTHY_IMAGE, b"release v2"].concat())?;
    step(
        board,
        format!("install v2 into slot {target}, read it back, verify it; slot {target} begins its trial"),
        report,
    )?;
    board.power_off();
    let booted = board.power_on()?;
    step(
        board,
        format!("reboot: the bootloader starts slot {booted} and counts one attempt"),
        report,
    )?;
    let committed = board.commit_if_healthy()?;
    step(
        board,
        if committed {
            format!("slot {booted} passes its health checks: marked good (committed)")
        } else {
            format!("slot {booted} is not healthy: not committed")
        },
        report,
    )?;
    board.power_off();
    let again = board.power_on()?;
    step(
        board,
        format!("power cycle: the bootloader starts slot {again}; no attempt is used"),
        report,
    )?;
    Ok(booted)
}

/// Trial → failed boots → rollback: install an image that never becomes healthy into the
/// inactive slot, and let the watchdog reset the board until the bootloader gives the
/// trial up and falls back by itself. Returns the number of boots the failed image got.
pub fn failed_trial_rolls_back(
    board: &mut SimBoard,
    report: &mut dyn FnMut(Step),
) -> Result<usize, BoardError> {
    if board.running().is_none() {
        board.power_on()?;
    }
    let good = board.running().cloned().ok_or(BoardError::PoweredOff)?;
    let target = board.inactive_slot()?;
    board.install(&target, &[BROKEN_IMAGE, b"release v3"].concat())?;
    step(
        board,
        format!("install v3 (broken) into slot {target}, verified; slot {target} begins its trial"),
        report,
    )?;
    let mut failed_boots = 0;
    for _ in 0..MAX_BOOTS_PER_TRIAL {
        board.power_off();
        let booted = board.power_on()?;
        if booted != target {
            step(
                board,
                format!("reboot: no attempts left for slot {target}; the bootloader falls back to slot {booted}"),
                report,
            )?;
            break;
        }
        failed_boots += 1;
        board.commit_if_healthy()?;
        step(
            board,
            format!("reboot: slot {target} starts (attempt {failed_boots}) but never gets healthy; the watchdog resets the board"),
            report,
        )?;
    }
    if board.running() != Some(&good) {
        step(board, format!("rollback did not reach slot {good}"), report)?;
    }
    Ok(failed_boots)
}
