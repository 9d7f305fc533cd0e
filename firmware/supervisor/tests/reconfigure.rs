//! Changing the set of services while it runs (what skerryd's controller does on a
//! config change), services held back from starting, readiness gates for checks run
//! by the caller, and log sources that follow.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{events_until, is, proc_stat, quick, DEADLINE};
use skerry_supervisor::{
    LogStream, Reconfigured, ServiceState, Supervisor, SupervisorError, SupervisorOptions,
};

fn running(service: &str) -> impl Fn(&skerry_supervisor::ServiceEvent) -> bool {
    is(service, |s| matches!(s, ServiceState::Running { .. }))
}

fn pid(supervisor: &Supervisor, name: &str) -> u32 {
    supervisor.status(name).unwrap().state.pid().unwrap()
}

fn gone(pid: u32) -> bool {
    proc_stat(pid).is_none_or(|(state, _, _)| state == 'Z')
}

#[tokio::test]
async fn added_changed_and_removed_services() {
    let (mut supervisor, mut events) = Supervisor::start(
        vec![quick("a", &["sleep", "30"]), quick("b", &["sleep", "31"])],
        SupervisorOptions::default(),
    )
    .unwrap();
    events_until(&mut events, running("a")).await;
    events_until(&mut events, running("b")).await;
    let (a1, b1) = (pid(&supervisor, "a"), pid(&supervisor, "b"));

    let mut c = quick("c", &["sleep", "33"]);
    c.depends_on = vec!["a".into()];
    let done = supervisor
        .reconfigure(vec![c, quick("a", &["sleep", "32"])], &BTreeSet::new())
        .await
        .unwrap();
    assert_eq!(
        done,
        Reconfigured {
            added: vec!["c".into()],
            changed: vec!["a".into()],
            removed: vec!["b".into()],
        }
    );
    assert_eq!(supervisor.start_order(), ["a", "c"]);
    assert!(
        gone(a1) && gone(b1),
        "the changed and the removed process are gone"
    );
    assert!(!supervisor.contains("b"));
    assert!(matches!(
        supervisor.status("b"),
        Err(SupervisorError::NoSuchService { .. })
    ));
    events_until(&mut events, running("c")).await;
    let a2 = pid(&supervisor, "a");
    assert_ne!(a2, a1);
    let c1 = pid(&supervisor, "c");

    // The same set again changes nothing.
    let same = supervisor
        .reconfigure(
            vec![quick("a", &["sleep", "32"]), {
                let mut c = quick("c", &["sleep", "33"]);
                c.depends_on = vec!["a".into()];
                c
            }],
            &BTreeSet::new(),
        )
        .await
        .unwrap();
    assert_eq!(same, Reconfigured::default());
    assert_eq!((pid(&supervisor, "a"), pid(&supervisor, "c")), (a2, c1));
    supervisor.shutdown().await;
    assert!(gone(a2) && gone(c1));
}

#[tokio::test]
async fn a_refused_set_changes_nothing() {
    let (mut supervisor, mut events) = Supervisor::start(
        vec![quick("a", &["sleep", "30"])],
        SupervisorOptions::default(),
    )
    .unwrap();
    events_until(&mut events, running("a")).await;
    let a = pid(&supervisor, "a");
    let mut orphan = quick("orphan", &["sleep", "30"]);
    orphan.depends_on = vec!["missing".into()];
    let err = supervisor
        .reconfigure(vec![orphan], &BTreeSet::new())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("missing"), "{err}");
    assert_eq!(pid(&supervisor, "a"), a);
    assert!(!supervisor.contains("orphan"));
    supervisor.shutdown().await;
}

#[tokio::test]
async fn held_services_are_registered_stopped() {
    let (mut supervisor, _events) =
        Supervisor::start(Vec::new(), SupervisorOptions::default()).unwrap();
    let held: BTreeSet<String> = ["x".to_string()].into();
    supervisor
        .reconfigure(vec![quick("x", &["sleep", "30"])], &held)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(supervisor.status("x").unwrap().state, ServiceState::Stopped);
    // A changed spec of a held service is not started either.
    supervisor
        .reconfigure(vec![quick("x", &["sleep", "31"])], &held)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(supervisor.status("x").unwrap().state, ServiceState::Stopped);
    supervisor.start_service("x").unwrap();
    let mut status = supervisor.watch_status("x").unwrap();
    tokio::time::timeout(DEADLINE, status.wait_for(|s| s.state.pid().is_some()))
        .await
        .unwrap()
        .unwrap();
    supervisor.shutdown().await;
}

#[tokio::test]
async fn dependents_wait_for_a_gated_service_to_be_declared_ready() {
    let mut base = quick("base", &["sleep", "30"]);
    base.gated = true;
    let mut top = quick("top", &["sleep", "30"]);
    top.depends_on = vec!["base".into()];
    let (supervisor, mut events) =
        Supervisor::start(vec![base, top], SupervisorOptions::default()).unwrap();
    events_until(&mut events, running("base")).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        matches!(
            supervisor.status("top").unwrap().state,
            ServiceState::Waiting { .. }
        ),
        "top waits while base is not declared ready"
    );
    let gate = supervisor.ready_gate("base").unwrap();
    assert!(!gate.get());
    gate.set(true);
    events_until(&mut events, running("top")).await;
    supervisor.shutdown().await;
}

#[tokio::test]
async fn a_log_source_follows_new_lines() {
    let dir = tempfile::tempdir().unwrap();
    let go = dir.path().join("go");
    let script = format!(
        "echo first; while [ ! -e {} ]; do sleep 0.02; done; echo second >&2; exec sleep 30",
        go.display()
    );
    let (supervisor, _events) = Supervisor::start(
        vec![quick("talk", &["sh", "-c", &script])],
        SupervisorOptions::default(),
    )
    .unwrap();
    let mut source = supervisor.log_source("talk").unwrap();
    tokio::time::timeout(DEADLINE, async {
        while source.total_lines(LogStream::Stdout) == 0 {
            source.changed().await;
        }
    })
    .await
    .unwrap();
    assert_eq!(source.tail(LogStream::Stdout, None)[0].text, "first");
    std::fs::write(&go, b"").unwrap();
    tokio::time::timeout(DEADLINE, async {
        while source.total_lines(LogStream::Stderr) == 0 {
            source.changed().await;
        }
    })
    .await
    .unwrap();
    let second = source.since(LogStream::Stderr, 0);
    assert_eq!(second.len(), 1);
    assert_eq!(
        (second[0].text.as_str(), second[0].stream),
        ("second", LogStream::Stderr)
    );
    assert!(source.since(LogStream::Stdout, 1).is_empty());
    supervisor.shutdown().await;
}
