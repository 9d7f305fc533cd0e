//! PID 1's loop while the daemon runs: every orphan the kernel hands to PID 1 is
//! reaped, SIGTERM and SIGINT are passed on to the daemon, and the loop ends when the
//! daemon itself has exited, with how it ended.

use rustix::process::{kill_process, waitpid, Pid, Signal, WaitOptions, WaitStatus};
use tokio::signal::unix::{signal, SignalKind};

/// Which exited children the loop collects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reap {
    /// Any child (PID 1, or a subreaper): orphans included.
    All,
    /// Only the daemon (a test process that has other children of its own).
    Daemon,
}

/// How the daemon ended and what else was done meanwhile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonEnd {
    /// "exited with 0", "was killed by signal 9".
    pub how: String,
    /// Its exit code, if it exited.
    pub code: Option<i32>,
    /// Other children reaped while it ran.
    pub orphans_reaped: usize,
    /// Signals passed on to it.
    pub forwarded: Vec<&'static str>,
}

fn describe(status: WaitStatus) -> (String, Option<i32>) {
    if let Some(code) = status.exit_status() {
        (format!("exited with {code}"), Some(code))
    } else if let Some(signal) = status.terminating_signal() {
        (format!("was killed by signal {signal}"), None)
    } else {
        (format!("ended with status {:#x}", status.as_raw()), None)
    }
}

/// Collects every exited child without waiting; returns the daemon's status if it was
/// among them, and counts the others.
fn reap(daemon: Pid, scope: Reap, orphans: &mut usize) -> Option<WaitStatus> {
    let mut ended = None;
    loop {
        let target = match scope {
            Reap::All => None,
            Reap::Daemon => Some(daemon),
        };
        match waitpid(target, WaitOptions::NOHANG) {
            Ok(Some((pid, status))) => {
                if pid == daemon {
                    ended = Some(status);
                    if scope == Reap::Daemon {
                        return ended;
                    }
                } else {
                    *orphans += 1;
                }
            }
            // No child has exited (Ok(None)) or there is none left (ECHILD).
            Ok(None) | Err(_) => return ended,
        }
    }
}

/// Collects whatever children have exited (used while shutting down).
pub fn reap_any() {
    while let Ok(Some(_)) = waitpid(None, WaitOptions::NOHANG) {}
}

/// Runs until `daemon` exits. The signal handlers must be installed before the daemon
/// is started (so no SIGCHLD is missed): call [`Signals::install`] first.
pub async fn supervise(daemon: Pid, scope: Reap, mut signals: Signals) -> DaemonEnd {
    let mut orphans = 0;
    let mut forwarded = Vec::new();
    loop {
        if let Some(status) = reap(daemon, scope, &mut orphans) {
            let (how, code) = describe(status);
            return DaemonEnd {
                how,
                code,
                orphans_reaped: orphans,
                forwarded,
            };
        }
        // SIGCHLD can be coalesced or arrive before a child is reapable: look again
        // at least every second.
        let timeout = tokio::time::sleep(std::time::Duration::from_secs(1));
        tokio::select! {
            _ = signals.child.recv() => {}
            _ = signals.term.recv() => {
                let _ = kill_process(daemon, Signal::TERM);
                forwarded.push("SIGTERM");
            }
            _ = signals.int.recv() => {
                let _ = kill_process(daemon, Signal::INT);
                forwarded.push("SIGINT");
            }
            _ = timeout => {}
        }
    }
}

/// The signals PID 1 listens to.
#[derive(Debug)]
pub struct Signals {
    child: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    /// Installs the handlers (inside a tokio runtime).
    pub fn install() -> std::io::Result<Signals> {
        Ok(Signals {
            child: signal(SignalKind::child())?,
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn pid_of(child: &std::process::Child) -> Pid {
        Pid::from_raw(child.id() as i32).unwrap()
    }

    #[tokio::test]
    #[expect(clippy::zombie_processes, reason = "supervise reaps it with waitpid")]
    async fn ends_with_the_daemons_exit_code() {
        let signals = Signals::install().unwrap();
        let child = Command::new("sh")
            .args(["-c", "sleep 0.2; exit 3"])
            .spawn()
            .unwrap();
        let end = supervise(pid_of(&child), Reap::Daemon, signals).await;
        assert_eq!((end.how.as_str(), end.code), ("exited with 3", Some(3)));
    }

    #[tokio::test]
    #[expect(clippy::zombie_processes, reason = "supervise reaps it with waitpid")]
    async fn sigterm_is_passed_on_to_the_daemon() {
        let signals = Signals::install().unwrap();
        // The "daemon" exits 7 only when it gets SIGTERM.
        let child = Command::new("sh")
            .args(["-c", "trap 'exit 7' TERM; while :; do sleep 0.05; done"])
            .spawn()
            .unwrap();
        let daemon = pid_of(&child);
        std::thread::sleep(std::time::Duration::from_millis(200));
        // The test process plays PID 1: the signal comes to it, not to the child.
        let supervising = tokio::spawn(supervise(daemon, Reap::Daemon, signals));
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        kill_process(rustix::process::getpid(), Signal::TERM).unwrap();
        let end = tokio::time::timeout(std::time::Duration::from_secs(10), supervising)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(end.code, Some(7), "{end:?}");
        assert_eq!(end.forwarded, vec!["SIGTERM"]);
    }
}
