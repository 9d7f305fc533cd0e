//! PID 1's reaper with real processes: this test process makes itself a child
//! subreaper (so orphans come to it as they come to PID 1) and supervises a "daemon"
//! that leaves an orphan behind. The orphan is reaped while the daemon runs, and the
//! loop ends with the daemon's own exit code. (One test in this file: reaping any child
//! must not steal another test's.)

use std::process::Command;

use skerryd::init::reaper::{supervise, Reap, Signals};

#[tokio::test]
#[expect(clippy::zombie_processes, reason = "supervise reaps it with waitpid")]
async fn orphans_are_reaped_and_the_daemons_exit_ends_the_loop() {
    rustix::process::set_child_subreaper(Some(rustix::process::getpid())).unwrap();
    let signals = Signals::install().unwrap();
    // `(sleep 0.2 &)`: the subshell exits at once, so the sleep is orphaned and comes
    // to us; the daemon itself exits 4 a second later.
    let daemon = Command::new("sh")
        .args(["-c", "(sleep 0.2 &); sleep 1; exit 4"])
        .spawn()
        .unwrap();
    let pid = rustix::process::Pid::from_raw(daemon.id() as i32).unwrap();
    let end = tokio::time::timeout(
        std::time::Duration::from_secs(20),
        supervise(pid, Reap::All, signals),
    )
    .await
    .unwrap();
    assert_eq!(end.code, Some(4), "{end:?}");
    assert!(end.orphans_reaped >= 1, "{end:?}");
    assert_eq!(end.how, "exited with 4");
}
