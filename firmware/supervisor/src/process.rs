//! Processes and their groups: every service and exec probe runs as the leader of its
//! own process group (pgid = its pid), so a stop reaches everything it started.
//! Stopping sends SIGTERM to the group, waits up to the grace period for the group to
//! empty, then sends SIGKILL. The leader is always awaited, so it is reaped; members it
//! left behind are reparented to PID 1 or to us when we are a child subreaper, and
//! [`reap_group`] collects those that are ours.

use std::io::ErrorKind;
use std::process::ExitStatus;
use std::time::Duration;

use rustix::process::{Pid, Signal, WaitId, WaitIdOptions};
use tokio::process::{Child, Command};
use tokio::time::Instant;

use crate::error::SpawnError;

/// How often a stop looks whether the group has emptied.
const GROUP_POLL: Duration = Duration::from_millis(10);
/// How long members sent SIGKILL get to die before we stop reaping them.
const ORPHAN_WAIT: Duration = Duration::from_secs(2);

/// Spawns `command` as the leader of a new process group.
pub(crate) fn spawn_in_group(command: &mut Command, program: &str) -> Result<Child, SpawnError> {
    command.process_group(0);
    command.spawn().map_err(|source| match source.kind() {
        ErrorKind::NotFound => SpawnError::NotFound {
            program: program.to_string(),
            source,
        },
        ErrorKind::PermissionDenied => SpawnError::PermissionDenied {
            program: program.to_string(),
            source,
        },
        _ => SpawnError::Other {
            program: program.to_string(),
            source,
        },
    })
}

/// The group id a pid leads, refusing ids that would make `kill(-pgid)` mean
/// something else (0 is our own group, 1 is every process) or hit our own group.
fn group_of(pgid: u32) -> Option<Pid> {
    let raw = i32::try_from(pgid).ok().filter(|&raw| raw > 1)?;
    let pid = Pid::from_raw(raw)?;
    (pid != rustix::process::getpgrp()).then_some(pid)
}

/// Sends `signal` to group `pgid`; false if no process of it was left.
pub(crate) fn kill_group(pgid: u32, signal: Signal) -> bool {
    group_of(pgid).is_some_and(|pid| rustix::process::kill_process_group(pid, signal).is_ok())
}

/// Whether any process (zombies included) is still in group `pgid`.
pub(crate) fn group_alive(pgid: u32) -> bool {
    group_of(pgid).is_some_and(|pid| rustix::process::test_kill_process_group(pid).is_ok())
}

/// Stops a running leader and its group: SIGTERM, then SIGKILL once `grace` has passed
/// with any of the group left. Returns how the leader ended (`None` if waiting failed).
pub(crate) async fn stop_group(
    child: &mut Child,
    pgid: u32,
    grace: Duration,
) -> Option<ExitStatus> {
    kill_group(pgid, Signal::TERM);
    let deadline = Instant::now() + grace;
    let mut status = None;
    if let Ok(waited) = tokio::time::timeout_at(deadline, child.wait()).await {
        status = waited.ok();
        while group_alive(pgid) && Instant::now() < deadline {
            tokio::time::sleep(GROUP_POLL).await;
        }
    }
    kill_group(pgid, Signal::KILL);
    if status.is_none() {
        // Also kill the leader by pid, in case its group is not what we think (it
        // called setpgid itself): a stop must end it either way.
        let _ = child.start_kill();
        status = child.wait().await.ok();
    }
    status
}

/// Makes this process a child subreaper: orphans of our services come to us (to be
/// reaped) instead of to PID 1, which may not reap at all.
pub(crate) fn become_subreaper() -> std::io::Result<()> {
    rustix::process::set_child_subreaper(Some(rustix::process::getpid())).map_err(Into::into)
}

/// Reaps the members of group `pgid` that are our children (orphans reparented to us),
/// giving those still dying from SIGKILL up to [`ORPHAN_WAIT`]. Call it only once the
/// leader has been awaited: before that, the leader is one of ours and tokio must reap
/// it.
pub(crate) async fn reap_group(pgid: u32) {
    let Some(group) = group_of(pgid) else { return };
    let deadline = Instant::now() + ORPHAN_WAIT;
    let options = WaitIdOptions::EXITED | WaitIdOptions::NOHANG;
    loop {
        match rustix::process::waitid(WaitId::Pgid(Some(group)), options) {
            Ok(Some(_)) => continue,
            Ok(None) if Instant::now() < deadline => tokio::time::sleep(GROUP_POLL).await,
            // No child of ours is left in the group (ECHILD), or the rest outlived
            // SIGKILL's grace (stuck in the kernel): PID 1 duties take over.
            Ok(None) | Err(_) => return,
        }
    }
}

/// Kills a process group when dropped: whatever path leaves a running service or
/// probe (exit, stop, cancellation), nothing it started outlives it.
#[derive(Debug)]
pub(crate) struct GroupGuard(pub(crate) Option<u32>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pgid) = self.0 {
            kill_group(pgid, Signal::KILL);
        }
    }
}
