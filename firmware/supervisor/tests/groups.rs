//! Stopping reaches the whole process group: a shell that ignores SIGTERM and its
//! background children are all gone after a stop, none left as a zombie; children
//! a crashed leader left behind are killed and reaped before the restart.

mod common;

use std::time::Duration;

use common::{events_until, group_members, is, our_zombies, proc_stat, quick};
use skerry_supervisor::{RestartPolicy, ServiceState, Supervisor, SupervisorOptions};

/// Waits until group `pgid` has `n` members (the shell forks its children).
async fn wait_for_members(pgid: u32, n: usize) -> Vec<(u32, char)> {
    for _ in 0..1_000 {
        let members = group_members(pgid);
        if members.len() >= n {
            return members;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!(
        "group {pgid} never reached {n} members: {:?}",
        group_members(pgid)
    );
}

#[tokio::test]
async fn stop_kills_the_whole_group_even_when_the_leader_ignores_sigterm() {
    // The leader ignores TERM, and so do its children (an ignored signal stays ignored
    // across exec): only the SIGKILL after the grace ends them.
    let spec = quick(
        "stubborn",
        &[
            "sh",
            "-c",
            "trap '' TERM; sleep 1000 & sleep 1000 & while :; do sleep 0.05; done",
        ],
    );
    let (supervisor, mut events) =
        Supervisor::start(vec![spec], SupervisorOptions::default()).unwrap();
    let seen = events_until(
        &mut events,
        is("stubborn", |s| matches!(s, ServiceState::Running { .. })),
    )
    .await;
    let pid = seen.last().and_then(|e| e.state.pid()).unwrap();
    let members = wait_for_members(pid, 3).await;
    assert_eq!(
        proc_stat(pid).map(|s| s.2),
        Some(pid),
        "the service leads its own group"
    );
    assert_ne!(
        proc_stat(pid).map(|s| s.2),
        proc_stat(std::process::id()).map(|s| s.2)
    );

    supervisor.shutdown().await;
    for (member, _) in &members {
        assert_eq!(
            proc_stat(*member),
            None,
            "pid {member} of the group is still in /proc"
        );
    }
    assert!(group_members(pid).is_empty());
    let rest = events_until(&mut events, is("stubborn", |s| *s == ServiceState::Stopped)).await;
    assert!(
        rest.iter().any(|e| e.state
            == ServiceState::Exited {
                exit: skerry_supervisor::ExitReason::Signal(9)
            }),
        "the leader ended by SIGKILL: {rest:#?}"
    );
    assert_eq!(our_zombies(), Vec::<u32>::new());
}

#[tokio::test]
async fn children_of_a_crashed_leader_are_killed_and_reaped() {
    let mut spec = quick("leaky", &["sh", "-c", "sleep 1000 & sleep 0.2; exit 7"]);
    spec.restart = RestartPolicy::Never;
    let (supervisor, mut events) =
        Supervisor::start(vec![spec], SupervisorOptions::default()).unwrap();
    let seen = events_until(
        &mut events,
        is("leaky", |s| matches!(s, ServiceState::Running { .. })),
    )
    .await;
    let pid = seen.last().and_then(|e| e.state.pid()).unwrap();
    let members = wait_for_members(pid, 2).await;
    events_until(
        &mut events,
        is("leaky", |s| matches!(s, ServiceState::Exited { .. })),
    )
    .await;
    for (member, _) in &members {
        assert_eq!(proc_stat(*member), None, "pid {member} outlived its leader");
    }
    assert_eq!(our_zombies(), Vec::<u32>::new());
    supervisor.shutdown().await;
}

#[tokio::test]
async fn a_leader_that_exits_on_sigterm_is_not_kept_waiting_for_the_grace() {
    let mut spec = quick("polite", &["sleep", "1000"]);
    spec.stop_grace_ms = 20_000;
    let (supervisor, mut events) =
        Supervisor::start(vec![spec], SupervisorOptions::default()).unwrap();
    events_until(
        &mut events,
        is("polite", |s| matches!(s, ServiceState::Running { .. })),
    )
    .await;
    // With a 20 s grace this would hang past the deadline if the stop waited it out.
    tokio::time::timeout(common::DEADLINE / 2, supervisor.shutdown())
        .await
        .expect("stop returned after SIGTERM");
    let rest = events_until(&mut events, is("polite", |s| *s == ServiceState::Stopped)).await;
    assert!(rest.iter().any(|e| e.state
        == ServiceState::Exited {
            exit: skerry_supervisor::ExitReason::Signal(15)
        }));
}
