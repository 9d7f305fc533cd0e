//! Restart policy with real processes: a crashing service comes back with a growing
//! backoff; on-failure leaves a clean exit alone; never stops after the first exit; a
//! missing program gives a clear status.

mod common;

use common::{events_until, is, quick};
use skerry_supervisor::{ExitReason, RestartPolicy, ServiceState, Supervisor, SupervisorOptions};

#[tokio::test]
async fn a_crashing_service_restarts_with_growing_backoff() {
    let spec = quick("crashy", &["sh", "-c", "exit 3"]);
    let (supervisor, mut events) =
        Supervisor::start(vec![spec], SupervisorOptions::default()).unwrap();
    let mut delays = Vec::new();
    let seen = events_until(&mut events, |e| {
        if let ServiceState::BackingOff { delay_ms, .. } = e.state {
            delays.push(delay_ms);
        }
        delays.len() == 5
    })
    .await;
    assert_eq!(delays, [20, 40, 80, 160, 320]);
    let exits = seen
        .iter()
        .filter(|e| {
            e.state
                == ServiceState::Exited {
                    exit: ExitReason::Code(3),
                }
        })
        .count();
    assert_eq!(exits, 5);
    let status = supervisor.status("crashy").unwrap();
    assert_eq!(status.restarts, 4);
    assert_eq!(status.last_exit, Some(ExitReason::Code(3)));
    supervisor.shutdown().await;
}

#[tokio::test]
async fn a_service_killed_by_a_signal_reports_the_signal() {
    let mut spec = quick("killed", &["sh", "-c", "kill -9 $$"]);
    spec.restart = RestartPolicy::OnFailure;
    let (supervisor, mut events) =
        Supervisor::start(vec![spec], SupervisorOptions::default()).unwrap();
    events_until(
        &mut events,
        is("killed", |s| {
            *s == ServiceState::Exited {
                exit: ExitReason::Signal(9),
            }
        }),
    )
    .await;
    events_until(
        &mut events,
        is("killed", |s| matches!(s, ServiceState::BackingOff { .. })),
    )
    .await;
    supervisor.shutdown().await;
}

#[tokio::test]
async fn on_failure_does_not_restart_a_clean_exit() {
    let mut clean = quick("clean", &["true"]);
    clean.restart = RestartPolicy::OnFailure;
    // A second service that goes on past the first's exit, so the event stream shows
    // whether `clean` was started again in the meantime.
    let mut marker = quick("marker", &["sh", "-c", "sleep 0.3; exit 1"]);
    marker.restart = RestartPolicy::Never;
    let (supervisor, mut events) =
        Supervisor::start(vec![clean, marker], SupervisorOptions::default()).unwrap();
    // Both exits, in whichever order a loaded machine gives them.
    let mut exited = std::collections::BTreeSet::new();
    let seen = events_until(&mut events, |e| {
        if matches!(e.state, ServiceState::Exited { .. }) {
            exited.insert(e.service.clone());
        }
        exited.len() == 2
    })
    .await;
    let clean_states: Vec<_> = seen
        .iter()
        .filter(|e| e.service == "clean")
        .map(|e| e.state.clone())
        .collect();
    assert!(
        matches!(
            clean_states.as_slice(),
            [
                ServiceState::Starting,
                ServiceState::Running { .. },
                ServiceState::Exited {
                    exit: ExitReason::Code(0)
                }
            ]
        ),
        "{clean_states:?}"
    );
    let status = supervisor.status("clean").unwrap();
    assert_eq!(status.restarts, 0);
    assert_eq!(
        status.state,
        ServiceState::Exited {
            exit: ExitReason::Code(0)
        }
    );
    // `never` kept its failed exit too.
    assert_eq!(
        supervisor.status("marker").unwrap().state,
        ServiceState::Exited {
            exit: ExitReason::Code(1)
        }
    );
    supervisor.shutdown().await;
}

#[tokio::test]
async fn on_failure_restarts_a_failed_exit() {
    let mut spec = quick("failing", &["false"]);
    spec.restart = RestartPolicy::OnFailure;
    let (supervisor, mut events) =
        Supervisor::start(vec![spec], SupervisorOptions::default()).unwrap();
    let mut starts = 0;
    events_until(&mut events, |e| {
        starts += usize::from(e.state == ServiceState::Starting);
        starts == 3
    })
    .await;
    supervisor.shutdown().await;
}

#[tokio::test]
async fn a_missing_program_is_a_clear_status_not_a_panic() {
    let mut spec = quick("ghost", &["/nonexistent/skerry-ghost"]);
    spec.restart = RestartPolicy::Never;
    let mut in_missing_dir = quick("lost", &["true"]);
    in_missing_dir.working_dir = Some("/nonexistent/dir".into());
    in_missing_dir.restart = RestartPolicy::Never;
    let (supervisor, mut events) =
        Supervisor::start(vec![spec, in_missing_dir], SupervisorOptions::default()).unwrap();
    let mut failed = Vec::new();
    events_until(&mut events, |e| {
        if let ServiceState::SpawnFailed { error } = &e.state {
            failed.push((e.service.clone(), error.clone()));
        }
        failed.len() == 2
    })
    .await;
    failed.sort();
    assert_eq!(
        failed,
        [
            (
                "ghost".to_string(),
                "program /nonexistent/skerry-ghost not found".to_string()
            ),
            (
                "lost".to_string(),
                "working directory /nonexistent/dir is missing or unusable".to_string()
            ),
        ]
    );
    let status = supervisor.status("ghost").unwrap();
    assert_eq!(
        status.last_error.as_deref(),
        Some("program /nonexistent/skerry-ghost not found")
    );
    supervisor.shutdown().await;
}

#[tokio::test]
async fn environment_and_working_dir_come_from_the_spec() {
    let dir = std::env::temp_dir();
    let mut spec = quick(
        "env",
        &[
            "/bin/sh",
            "-c",
            "echo \"$GREETING\"; echo \"${HOME-unset}\"; pwd",
        ],
    );
    spec.env
        .insert("GREETING".into(), "hello from the spec".into());
    spec.working_dir = Some(dir.clone());
    spec.restart = RestartPolicy::Never;
    let (supervisor, mut events) =
        Supervisor::start(vec![spec], SupervisorOptions::default()).unwrap();
    events_until(
        &mut events,
        is("env", |s| matches!(s, ServiceState::Exited { .. })),
    )
    .await;
    // The capture task may still be draining the pipe after the exit event.
    let mut lines = Vec::new();
    for _ in 0..300 {
        lines = supervisor
            .logs("env", skerry_supervisor::LogStream::Stdout)
            .unwrap();
        if lines.len() == 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let texts: Vec<String> = lines.into_iter().map(|l| l.text).collect();
    let pwd = dir.canonicalize().unwrap().display().to_string();
    assert_eq!(
        texts,
        ["hello from the spec".to_string(), "unset".to_string(), pwd]
    );
    supervisor.shutdown().await;
}

#[tokio::test]
async fn a_stable_run_resets_the_backoff() {
    // Every run lasts longer than reset_after, so each restart waits the base delay.
    let mut spec = quick("steady", &["sh", "-c", "sleep 0.1; exit 1"]);
    spec.backoff.reset_after_ms = 50;
    let (supervisor, mut events) =
        Supervisor::start(vec![spec], SupervisorOptions::default()).unwrap();
    let mut delays = Vec::new();
    events_until(&mut events, |e| {
        if let ServiceState::BackingOff { delay_ms, .. } = e.state {
            delays.push(delay_ms);
        }
        delays.len() == 3
    })
    .await;
    assert_eq!(delays, [20, 20, 20]);
    supervisor.shutdown().await;
}
