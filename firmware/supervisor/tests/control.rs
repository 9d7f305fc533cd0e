//! Per-service control (what the API's ServiceStart/Stop/Restart will call): stop one
//! service while the others run, start it again, restart it, and the refusals.

mod common;

use common::{events_until, is, our_zombies, proc_stat, quick};
use skerry_supervisor::{
    RestartPolicy, ServiceState, Supervisor, SupervisorError, SupervisorOptions,
};

fn running(service: &str) -> impl Fn(&skerry_supervisor::ServiceEvent) -> bool {
    is(service, |s| matches!(s, ServiceState::Running { .. }))
}

#[tokio::test]
async fn stop_start_and_restart_one_service() {
    let specs = vec![
        quick("one", &["sleep", "30"]),
        quick("two", &["sleep", "30"]),
    ];
    let (mut supervisor, mut events) =
        Supervisor::start(specs, SupervisorOptions::default()).unwrap();
    let first = events_until(&mut events, running("one"))
        .await
        .last()
        .and_then(|e| e.state.pid())
        .unwrap();
    events_until(&mut events, running("two")).await;
    let two = supervisor.status("two").unwrap().state.pid().unwrap();

    supervisor.stop_service("one").await.unwrap();
    assert_eq!(
        supervisor.status("one").unwrap().state,
        ServiceState::Stopped
    );
    assert_eq!(
        proc_stat(first),
        None,
        "the stopped process is gone and reaped"
    );
    assert_eq!(
        supervisor.status("two").unwrap().state,
        ServiceState::Running { pid: two }
    );
    // Stopping again is a no-op.
    supervisor.stop_service("one").await.unwrap();

    supervisor.start_service("one").unwrap();
    let second = events_until(&mut events, running("one"))
        .await
        .last()
        .and_then(|e| e.state.pid())
        .unwrap();
    assert_ne!(second, first);
    let err = supervisor.start_service("one").unwrap_err();
    assert!(
        matches!(err, SupervisorError::AlreadyRunning { .. }),
        "{err:?}"
    );
    assert_eq!(err.to_string(), "service one is running: stop it first");

    supervisor.restart_service("one").await.unwrap();
    let third = events_until(&mut events, running("one"))
        .await
        .last()
        .and_then(|e| e.state.pid())
        .unwrap();
    assert_ne!(third, second);
    assert_eq!(proc_stat(second), None);

    let err = supervisor.stop_service("three").await.unwrap_err();
    assert_eq!(err.to_string(), "no service named three");
    supervisor.shutdown().await;
    assert_eq!(our_zombies(), Vec::<u32>::new());
}

#[tokio::test]
async fn a_service_that_exited_for_good_can_be_started_again() {
    let mut once = quick("once", &["true"]);
    once.restart = RestartPolicy::Never;
    let (mut supervisor, mut events) =
        Supervisor::start(vec![once], SupervisorOptions::default()).unwrap();
    events_until(
        &mut events,
        is("once", |s| matches!(s, ServiceState::Exited { .. })),
    )
    .await;
    // The runner ends right after its last event; wait for that before starting.
    for _ in 0..500 {
        if supervisor.start_service("once").is_ok() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let again = events_until(
        &mut events,
        is("once", |s| matches!(s, ServiceState::Exited { .. })),
    )
    .await;
    assert!(again
        .iter()
        .any(|e| e.service == "once" && e.state == ServiceState::Starting));
    supervisor.shutdown().await;
}

#[test]
fn starting_outside_a_runtime_is_refused_not_a_panic() {
    let err =
        Supervisor::start(vec![quick("x", &["true"])], SupervisorOptions::default()).unwrap_err();
    assert!(matches!(err, SupervisorError::NoRuntime), "{err:?}");
}
