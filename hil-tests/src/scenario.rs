//! The A/B stories, run on a board with releases from a signed repository. Each step is
//! reported with the boot state after it, so the demo can print it and the tests can
//! check it.

use std::path::Path;

use skerry_boot_state::{BootState, SlotName};
use skerry_installer::InstallReport;

use crate::board::{BoardError, SimBoard};
use crate::updates::{Release, SignedReleases};

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

/// Where a story gets its releases, and where the device keeps its trust between runs.
#[derive(Debug, Clone, Copy)]
pub struct UpdateSource<'a> {
    pub releases: &'a SignedReleases,
    pub device_state: &'a Path,
}

/// What a story did, for the tests to check.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The slot the release went into.
    pub slot: SlotName,
    /// What the installer reported.
    pub install: InstallReport,
    /// Power-ons of the new slot before it was committed or given up.
    pub boots_of_new_slot: usize,
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

fn install(
    board: &mut SimBoard,
    source: UpdateSource<'_>,
    release: Release,
    report: &mut dyn FnMut(Step),
) -> Result<(SlotName, InstallReport), BoardError> {
    if board.running().is_none() {
        board.power_on()?;
    }
    let slot = board.inactive_slot()?;
    let running = board.running().cloned().ok_or(BoardError::PoweredOff)?;
    let done = source
        .releases
        .install(board, &slot, release, source.device_state)?;
    step(
        board,
        format!(
            "install {} into slot {slot} from the signed repository: fetched {} for a {} image \
             ({} chunks reused from slot {running}, {} fetched), read back and verified \
             (BLAKE3 {}…); slot {slot} begins its trial",
            done.version,
            megabytes(done.bytes_fetched),
            megabytes(done.bytes_written),
            done.chunks_reused,
            done.chunks_fetched,
            &done.blake3[..12],
        ),
        report,
    )?;
    Ok((slot, done))
}

fn megabytes(bytes: u64) -> String {
    format!("{:.2} MB", bytes as f64 / 1e6)
}

/// Upgrade → trial → commit: install a healthy release into the inactive slot, reboot
/// into its trial, pass health checks, mark it good, and reboot once more to show a good
/// slot starts without using attempts.
pub fn upgrade_and_commit(
    board: &mut SimBoard,
    source: UpdateSource<'_>,
    report: &mut dyn FnMut(Step),
) -> Result<Outcome, BoardError> {
    let first = board.power_on()?;
    step(
        board,
        format!("power on: the bootloader starts slot {first}"),
        report,
    )?;
    let (slot, done) = install(board, source, Release::Upgrade, report)?;
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
    Ok(Outcome {
        boots_of_new_slot: usize::from(booted == slot),
        slot,
        install: done,
    })
}

/// Trial → failed boots → rollback: install a release that never becomes healthy into
/// the inactive slot, and let the watchdog reset the board until the bootloader gives the
/// trial up and falls back by itself.
pub fn failed_trial_rolls_back(
    board: &mut SimBoard,
    source: UpdateSource<'_>,
    report: &mut dyn FnMut(Step),
) -> Result<Outcome, BoardError> {
    let (slot, done) = install(board, source, Release::Broken, report)?;
    let mut boots = 0;
    for _ in 0..MAX_BOOTS_PER_TRIAL {
        board.power_off();
        let booted = board.power_on()?;
        if booted != slot {
            step(
                board,
                format!("reboot: no attempts left for slot {slot}; the bootloader falls back to slot {booted}"),
                report,
            )?;
            break;
        }
        boots += 1;
        board.commit_if_healthy()?;
        step(
            board,
            format!("reboot: slot {slot} starts (attempt {boots}) but never gets healthy; the watchdog resets the board"),
            report,
        )?;
    }
    Ok(Outcome {
        slot,
        install: done,
        boots_of_new_slot: boots,
    })
}

/// What the installer said when it refused a tampered release.
#[derive(Debug, Clone)]
pub struct Refusal {
    /// The slot the release was meant for.
    pub slot: SlotName,
    /// The installer's error, causes included.
    pub reason: String,
    /// Whether the boot state afterwards is the one before (the slot stayed not bootable).
    pub boot_state_unchanged: bool,
}

/// A mirror serves `release` with image bytes altered after signing: the installer must
/// refuse it before the slot can be tried, and the board keeps running what it runs.
pub fn tampered_release_is_refused(
    board: &mut SimBoard,
    mirror: UpdateSource<'_>,
    release: Release,
    report: &mut dyn FnMut(Step),
) -> Result<Refusal, BoardError> {
    if board.running().is_none() {
        board.power_on()?;
    }
    let slot = board.inactive_slot()?;
    let before = board.boot_state()?;
    let reason = match mirror
        .releases
        .install(board, &slot, release, mirror.device_state)
    {
        Ok(done) => {
            return Err(BoardError::Update {
                slot,
                source: format!("the tampered release {} was installed", done.version).into(),
            })
        }
        Err(refused) => chain(&refused),
    };
    let after = board.boot_state()?;
    step(
        board,
        format!(
            "a mirror serves {} with image bytes altered after signing: the installer refuses \
             it ({reason}); slot {slot} is never tried",
            release.version()
        ),
        report,
    )?;
    Ok(Refusal {
        slot,
        reason,
        boot_state_unchanged: after == before,
    })
}

/// An error and its causes on one line.
fn chain(error: &dyn std::error::Error) -> String {
    let mut words = error.to_string();
    let mut cause = error.source();
    while let Some(c) = cause {
        words.push_str(": ");
        words.push_str(&c.to_string());
        cause = c.source();
    }
    words
}
