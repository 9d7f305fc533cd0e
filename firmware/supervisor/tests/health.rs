//! Health checks against real processes: an exec check flips healthy and unhealthy at
//! its thresholds as the world changes; HTTP and TCP checks against a real server; the
//! critical flag feeds `critical_checks_pass`.

mod common;

use common::{events_until, free_port, is, python3, quick};
use skerry_supervisor::{
    HealthCheckKind, HealthCheckSpec, HealthState, ServiceState, StatusRange, Supervisor,
    SupervisorOptions,
};

fn check(kind: HealthCheckKind, successes: u32, failures: u32) -> HealthCheckSpec {
    HealthCheckSpec {
        interval_ms: 30,
        timeout_ms: 2_000,
        success_threshold: successes,
        failure_threshold: failures,
        ..HealthCheckSpec::new(kind)
    }
}

#[tokio::test]
async fn exec_check_thresholds_flip_healthy_and_unhealthy() {
    let dir = tempfile::tempdir().unwrap();
    let flag = dir.path().join("ok");
    let mut spec = quick("worker", &["sleep", "30"]);
    let mut health = check(
        HealthCheckKind::Exec {
            argv: vec!["test".into(), "-e".into(), flag.display().to_string()],
        },
        2,
        3,
    );
    health.critical = true;
    spec.health = Some(health);
    let (supervisor, mut events) =
        Supervisor::start(vec![spec], SupervisorOptions::default()).unwrap();

    let seen = events_until(
        &mut events,
        is("worker", |s| matches!(s, ServiceState::Unhealthy { .. })),
    )
    .await;
    assert!(!seen
        .iter()
        .any(|e| matches!(e.state, ServiceState::Healthy { .. })));
    assert!(!supervisor.critical_checks_pass());
    let status = supervisor.status("worker").unwrap();
    assert_eq!(status.health, HealthState::Unhealthy);
    assert!(
        status
            .last_error
            .as_deref()
            .unwrap_or_default()
            .contains("exited with"),
        "{status:?}"
    );

    std::fs::write(&flag, b"").unwrap();
    events_until(
        &mut events,
        is("worker", |s| matches!(s, ServiceState::Healthy { .. })),
    )
    .await;
    assert!(supervisor.critical_checks_pass());

    std::fs::remove_file(&flag).unwrap();
    events_until(
        &mut events,
        is("worker", |s| matches!(s, ServiceState::Unhealthy { .. })),
    )
    .await;
    assert!(!supervisor.critical_checks_pass());
    supervisor.shutdown().await;
}

#[tokio::test]
async fn exec_check_that_hangs_fails_by_timeout() {
    let mut spec = quick("slow", &["sleep", "30"]);
    let mut health = check(
        HealthCheckKind::Exec {
            argv: vec!["sleep".into(), "30".into()],
        },
        1,
        1,
    );
    health.timeout_ms = 50;
    spec.health = Some(health);
    let (supervisor, mut events) =
        Supervisor::start(vec![spec], SupervisorOptions::default()).unwrap();
    events_until(
        &mut events,
        is("slow", |s| matches!(s, ServiceState::Unhealthy { .. })),
    )
    .await;
    let status = supervisor.status("slow").unwrap();
    assert_eq!(status.last_error.as_deref(), Some("timed out after 50 ms"));
    supervisor.shutdown().await;
}

#[tokio::test]
async fn http_and_tcp_checks_against_a_real_server() {
    let python = python3();
    let root = tempfile::tempdir().unwrap();
    let port = free_port();
    let closed = free_port();
    let mut web = quick(
        "web",
        &[
            &python,
            "-m",
            "http.server",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--directory",
            &root.path().display().to_string(),
        ],
    );
    // The spec is the whole environment: python3 may be a pyenv shim needing PATH and HOME.
    web.env.insert("PYTHONUNBUFFERED".into(), "1".into());
    if let Ok(path) = std::env::var("PATH") {
        web.env.insert("PATH".into(), path);
    }
    if let Ok(home) = std::env::var("HOME") {
        web.env.insert("HOME".into(), home);
    }
    web.health = Some(check(
        HealthCheckKind::Http {
            port,
            path: "/".into(),
            expect: StatusRange { min: 200, max: 299 },
        },
        1,
        1_000,
    ));
    // Checks that watch the web server from other services: a missing page, the
    // open port and a closed one.
    let watcher = |name: &str, kind| {
        let mut spec = quick(name, &["sleep", "30"]);
        spec.depends_on = vec!["web".into()];
        spec.health = Some(check(kind, 1, 2));
        spec
    };
    let specs = vec![
        web,
        watcher(
            "missing-page",
            HealthCheckKind::Http {
                port,
                path: "/missing".into(),
                expect: StatusRange { min: 200, max: 299 },
            },
        ),
        watcher(
            "not-found-ok",
            HealthCheckKind::Http {
                port,
                path: "/missing".into(),
                expect: StatusRange { min: 404, max: 404 },
            },
        ),
        watcher(
            "tcp-open",
            HealthCheckKind::Tcp {
                host: "127.0.0.1".into(),
                port,
            },
        ),
        watcher(
            "tcp-closed",
            HealthCheckKind::Tcp {
                host: "127.0.0.1".into(),
                port: closed,
            },
        ),
    ];
    let (supervisor, mut events) = Supervisor::start(specs, SupervisorOptions::default()).unwrap();
    let mut verdicts = std::collections::BTreeMap::new();
    events_until(&mut events, |e| {
        match e.state {
            ServiceState::Healthy { .. } | ServiceState::Unhealthy { .. } if e.service != "web" => {
                verdicts.insert(e.service.clone(), e.health);
            }
            _ => {}
        }
        verdicts.len() == 4
    })
    .await;
    assert_eq!(
        verdicts.into_iter().collect::<Vec<_>>(),
        [
            ("missing-page".to_string(), HealthState::Unhealthy),
            ("not-found-ok".to_string(), HealthState::Healthy),
            ("tcp-closed".to_string(), HealthState::Unhealthy),
            ("tcp-open".to_string(), HealthState::Healthy),
        ]
    );
    let missing = supervisor.status("missing-page").unwrap();
    assert_eq!(
        missing.last_error.as_deref(),
        Some(
            format!("GET http://127.0.0.1:{port}/missing answered 404, expected 200-299").as_str()
        )
    );
    assert_eq!(
        supervisor.status("web").unwrap().health,
        HealthState::Healthy
    );
    supervisor.shutdown().await;
}

#[tokio::test]
async fn an_exec_check_runs_with_the_service_environment_and_directory() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("marker"), b"").unwrap();
    let mut spec = quick("envcheck", &["sleep", "30"]);
    spec.env.insert("MODE".into(), "ready".into());
    spec.working_dir = Some(dir.path().to_path_buf());
    spec.health = Some(check(
        HealthCheckKind::Exec {
            argv: vec![
                "sh".into(),
                "-c".into(),
                "test \"$MODE\" = ready && test -e marker".into(),
            ],
        },
        1,
        1,
    ));
    let (supervisor, mut events) =
        Supervisor::start(vec![spec], SupervisorOptions::default()).unwrap();
    let seen = events_until(&mut events, |e| {
        matches!(
            e.state,
            ServiceState::Healthy { .. } | ServiceState::Unhealthy { .. }
        )
    })
    .await;
    assert!(
        matches!(seen.last().unwrap().state, ServiceState::Healthy { .. }),
        "{seen:#?}"
    );
    supervisor.shutdown().await;
}
