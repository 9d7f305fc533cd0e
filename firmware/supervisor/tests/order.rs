//! Dependency order with real processes: a dependent waits until its dependency is
//! running (or healthy, when it has a check), the supervisor stops dependents first,
//! and a cycle or an unknown dependency is refused before anything runs.

mod common;

use common::{events_until, is, our_zombies, quick};
use skerry_supervisor::{
    HealthCheckKind, HealthCheckSpec, ServiceState, Supervisor, SupervisorError, SupervisorOptions,
};

fn position(
    seen: &[skerry_supervisor::ServiceEvent],
    service: &str,
    pred: impl Fn(&ServiceState) -> bool,
) -> usize {
    seen.iter()
        .position(|e| e.service == service && pred(&e.state))
        .unwrap_or_else(|| panic!("no such event for {service} in {seen:#?}"))
}

#[tokio::test]
async fn dependents_start_after_their_dependencies_and_stop_before_them() {
    let dir = tempfile::tempdir().unwrap();
    let flag = dir.path().join("db-ready");
    let net = quick("net", &["sleep", "30"]);
    let mut db = quick("db", &["sleep", "30"]);
    db.depends_on = vec!["net".into()];
    db.health = Some(HealthCheckSpec {
        interval_ms: 20,
        success_threshold: 1,
        failure_threshold: 1,
        ..HealthCheckSpec::new(HealthCheckKind::Exec {
            argv: vec!["test".into(), "-e".into(), flag.display().to_string()],
        })
    });
    let mut app = quick("app", &["sleep", "30"]);
    app.depends_on = vec!["db".into(), "net".into()];
    // Listed dependents first: the order comes from the graph, not the list.
    let (supervisor, mut events) =
        Supervisor::start(vec![app, db, net], SupervisorOptions::default()).unwrap();
    assert_eq!(supervisor.start_order(), ["net", "db", "app"]);

    // db runs but is not healthy yet: app must still be waiting.
    let mut seen = events_until(
        &mut events,
        is("db", |s| matches!(s, ServiceState::Unhealthy { .. })),
    )
    .await;
    assert!(matches!(
        supervisor.status("app").unwrap().state,
        ServiceState::Waiting { .. }
    ));
    std::fs::write(&flag, b"").unwrap();
    seen.extend(
        events_until(
            &mut events,
            is("app", |s| matches!(s, ServiceState::Running { .. })),
        )
        .await,
    );

    let net_running = position(&seen, "net", |s| matches!(s, ServiceState::Running { .. }));
    let db_starting = position(&seen, "db", |s| *s == ServiceState::Starting);
    let db_healthy = position(&seen, "db", |s| matches!(s, ServiceState::Healthy { .. }));
    let app_starting = position(&seen, "app", |s| *s == ServiceState::Starting);
    assert!(net_running < db_starting, "db started before net ran");
    assert!(
        db_healthy < app_starting,
        "app started before db was healthy"
    );

    let shutdown = tokio::spawn(supervisor.shutdown());
    let stops = events_until(&mut events, is("net", |s| *s == ServiceState::Stopped)).await;
    shutdown.await.unwrap();
    let stopped: Vec<&str> = stops
        .iter()
        .filter(|e| e.state == ServiceState::Stopped)
        .map(|e| e.service.as_str())
        .collect();
    assert_eq!(stopped, ["app", "db", "net"]);
    assert_eq!(our_zombies(), Vec::<u32>::new());
}

#[tokio::test]
async fn a_stop_while_waiting_for_a_dependency_ends_cleanly() {
    let mut never_ready = quick("never-ready", &["sleep", "30"]);
    never_ready.health = Some(HealthCheckSpec {
        interval_ms: 20,
        ..HealthCheckSpec::new(HealthCheckKind::Exec {
            argv: vec!["false".into()],
        })
    });
    let mut app = quick("app", &["sleep", "30"]);
    app.depends_on = vec!["never-ready".into()];
    let (supervisor, mut events) =
        Supervisor::start(vec![never_ready, app], SupervisorOptions::default()).unwrap();
    events_until(
        &mut events,
        is("never-ready", |s| {
            matches!(s, ServiceState::Unhealthy { .. })
        }),
    )
    .await;
    supervisor.shutdown().await;
    let rest = events_until(
        &mut events,
        is("never-ready", |s| *s == ServiceState::Stopped),
    )
    .await;
    assert!(rest
        .iter()
        .any(|e| e.service == "app" && e.state == ServiceState::Stopped));
    assert!(!rest
        .iter()
        .any(|e| e.service == "app" && e.state == ServiceState::Starting));
}

#[tokio::test]
async fn cycles_and_unknown_dependencies_are_refused_before_anything_runs() {
    let mut a = quick("a", &["sleep", "30"]);
    a.depends_on = vec!["b".into()];
    let mut b = quick("b", &["sleep", "30"]);
    b.depends_on = vec!["a".into()];
    let err = Supervisor::start(vec![a, b], SupervisorOptions::default()).unwrap_err();
    assert!(
        matches!(&err, SupervisorError::DependencyCycle { .. }),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "services depend on each other in a cycle: a -> b -> a"
    );

    let mut c = quick("c", &["sleep", "30"]);
    c.depends_on = vec!["nope".into()];
    let err = Supervisor::start(vec![c], SupervisorOptions::default()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "service c depends on nope, which is not defined"
    );
}
