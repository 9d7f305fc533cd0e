//! Services follow the config: added, removed and changed services, dependency order,
//! restarts with backoff, an operator's stop that sticks, unknown ids, and the stop
//! hook leaving no process behind.

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;
use skerryd_services::RunState;
use tonic::Code;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_follow_config_changes() {
    let h = Harness::new();
    h.set_services(&[
        service(json!({"name": "a", "command": ["sleep", "300"]})),
        service(json!({"name": "b", "command": ["sleep", "301"]})),
    ]);
    let a1 = h.running_pid("a").await;
    let b1 = h.running_pid("b").await;

    // Change a: it restarts with the new command; b is left alone.
    h.set_services(&[
        service(json!({"name": "a", "command": ["sleep", "302"]})),
        service(json!({"name": "b", "command": ["sleep", "301"]})),
    ]);
    let a2 = eventually("a runs again with a new pid", || {
        h.status("a")
            .filter(|s| s.state == RunState::Running)
            .and_then(|s| s.pid)
            .filter(|pid| *pid != a1)
    })
    .await;
    assert!(!alive(a1), "the old process of a is gone");
    let cmdline = std::fs::read(format!("/proc/{a2}/cmdline")).unwrap();
    assert!(
        String::from_utf8_lossy(&cmdline).contains("302"),
        "a runs the new command"
    );
    assert_eq!(
        h.status("b").and_then(|s| s.pid),
        Some(b1),
        "b did not restart"
    );

    // Remove b: its process group stops, its status goes.
    h.set_services(&[service(json!({"name": "a", "command": ["sleep", "302"]}))]);
    eventually("b's status is gone", || {
        h.status("b").is_none().then_some(())
    })
    .await;
    eventually("b's process is gone", || (!alive(b1)).then_some(())).await;
    assert!(group_members(b1).is_empty());
    assert_eq!(h.status("a").and_then(|s| s.pid), Some(a2));

    let listed = h.ops.list().await.unwrap();
    let ids: Vec<&str> = listed.services.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["a"]);
    assert_eq!(listed.services[0].pid, a2);

    // Every state change is an event with the service and its state.
    let events = h.events_of("service.state");
    assert!(events.iter().any(
        |e| e.attributes.get("service").map(String::as_str) == Some("b")
            && e.attributes.get("state").map(String::as_str) == Some("stopped")
    ));
    assert!(events.iter().any(
        |e| e.attributes.get("service").map(String::as_str) == Some("a")
            && e.attributes.get("state").map(String::as_str) == Some("running")
    ));
    h.stop().await;
    assert!(!alive(a2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dependencies_start_first() {
    need("sh");
    let h = Harness::new();
    let log = h.path("order");
    let dir = h.dir.path().display().to_string();
    // Each is ready (its check passes) once it wrote its name down; base takes its
    // time, so a dependent that only waited for base's process would write first.
    let starter = |name: &str, delay: &str, deps: &[&str]| {
        service(json!({
            "name": name,
            "command": ["sh", "-c", format!(
                "sleep {delay}; echo {name} >> {}; touch {dir}/{name}.up; exec sleep 300",
                log.display())],
            "dependsOn": deps,
            "healthChecks": [{
                "name": "up", "interval": "100ms", "timeout": "50ms",
                "probe": {"exec": {"command": ["test", "-e", format!("{dir}/{name}.up")]}},
            }],
        }))
    };
    // Given dependents first; they must start after what they depend on.
    h.set_services(&[
        starter("top", "0", &["mid"]),
        starter("mid", "0", &["base"]),
        starter("base", "0.5", &[]),
    ]);
    for name in ["base", "mid", "top"] {
        h.running_pid(name).await;
    }
    let order = std::fs::read_to_string(&log).unwrap();
    assert_eq!(order.lines().collect::<Vec<_>>(), ["base", "mid", "top"]);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashing_service_restarts_with_growing_backoff() {
    need("sh");
    let h = Harness::new();
    h.set_services(&[service(json!({
        "name": "crash",
        "command": ["sh", "-c", "exit 3"],
        "restart": {"policy": "onFailure", "initialBackoff": "40ms", "maxBackoff": "160ms"},
    }))]);
    eventually("crash restarted 4 times", || {
        h.status("crash").filter(|s| s.restarts >= 4).map(|_| ())
    })
    .await;
    let delays: Vec<String> = h
        .events_of("service.state")
        .into_iter()
        .filter(|e| e.attributes.get("state").map(String::as_str) == Some("backoff"))
        .map(|e| e.message)
        .take(4)
        .collect();
    let want = [
        "restarting in 40 ms",
        "restarting in 80 ms",
        "restarting in 160 ms",
        "restarting in 160 ms",
    ];
    for (message, want) in delays.iter().zip(want) {
        assert!(message.contains(want), "{message:?} should say {want:?}");
    }
    assert_eq!(delays.len(), 4);
    let exits: Vec<String> = h
        .events_of("service.state")
        .into_iter()
        .filter_map(|e| e.attributes.get("exit").cloned())
        .collect();
    assert!(
        exits.iter().all(|e| e == "code 3") && exits.len() >= 4,
        "{exits:?}"
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_stop_sticks_until_start() {
    let h = Harness::new();
    let config = |n: &str| service(json!({"name": "held", "command": ["sleep", n]}));
    h.set_services(&[config("300")]);
    let first = h.running_pid("held").await;

    let answer = h.ops.stop("held").await.unwrap();
    assert_eq!(answer.state, skerry_api::pb::ServiceState::Stopped as i32);
    assert_eq!(answer.pid, 0);
    assert!(!alive(first));
    let status = eventually("the status says held", || {
        h.status("held")
            .filter(|s| s.held && s.state == RunState::Stopped)
    })
    .await;
    assert!(status.message.contains("operator"), "{}", status.message);
    // The operator's stop is not reported as a failure on its way.
    assert!(!h.events_of("service.state").iter().any(|e| {
        e.attributes.get("service").map(String::as_str) == Some("held")
            && e.attributes.get("state").map(String::as_str) == Some("failed")
    }));

    // A config change restarts changed services — but not one the operator stopped.
    h.set_services(&[
        config("301"),
        service(json!({"name": "other", "command": ["sleep", "300"]})),
    ]);
    h.running_pid("other").await;
    let reconciled = h
        .runtime
        .as_ref()
        .unwrap()
        .status("services")
        .unwrap()
        .reconciles;
    // And a full resync (the runtime's trigger) leaves it stopped too.
    assert!(h.runtime.as_ref().unwrap().trigger("services"));
    eventually("the controller ran again", || {
        (h.runtime
            .as_ref()
            .unwrap()
            .status("services")
            .unwrap()
            .reconciles
            > reconciled)
            .then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let status = h.status("held").unwrap();
    assert_eq!(status.state, RunState::Stopped, "{status:?}");
    assert_eq!(status.pid, None);

    let answer = h.ops.start("held").await.unwrap();
    assert!(
        [
            skerry_api::pb::ServiceState::Starting as i32,
            skerry_api::pb::ServiceState::Running as i32
        ]
        .contains(&answer.state),
        "{answer:?}"
    );
    let pid = h.running_pid("held").await;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    assert!(
        String::from_utf8_lossy(&cmdline).contains("301"),
        "started with the new config"
    );
    eventually("the hold is gone", || {
        h.status("held").filter(|s| !s.held).map(|_| ())
    })
    .await;

    let restarted = h.ops.restart("held").await.unwrap();
    assert_eq!(restarted.id, "held");
    let again = eventually("held runs with a new pid", || {
        h.status("held").and_then(|s| s.pid).filter(|p| *p != pid)
    })
    .await;
    assert!(!alive(pid));
    assert!(alive(again));
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_and_bad_ids_are_refused_by_name() {
    let h = Harness::new();
    h.set_services(&[service(
        json!({"name": "real", "command": ["sleep", "300"]}),
    )]);
    h.running_pid("real").await;
    for result in [
        h.ops.stop("ghost").await,
        h.ops.start("ghost").await,
        h.ops.restart("ghost").await,
    ] {
        let err = result.unwrap_err();
        assert_eq!(err.code(), Code::NotFound);
        assert!(err.message().contains("ghost"), "{}", err.message());
    }
    let err = h.ops.stop("").await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("empty"));
    let long = "x".repeat(64);
    let err = h.ops.start(&long).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("at most 63"), "{}", err.message());
    let logs = h
        .ops
        .logs(skerry_api::pb::LogsRequest {
            service_id: "ghost".into(),
            follow: false,
            tail_lines: 0,
        })
        .await;
    let Err(err) = logs else {
        panic!("logs of an unknown service were answered")
    };
    assert_eq!(err.code(), Code::NotFound);
    assert!(err.message().contains("ghost"));
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stop_hook_stops_every_process_group() {
    need("sh");
    let h = Harness::new();
    h.set_services(&[
        service(json!({"name": "base", "command": ["sleep", "300"]})),
        // A shell that ignores SIGTERM and leaves a child in its group.
        service(json!({
            "name": "stubborn",
            "command": ["sh", "-c", "trap '' TERM; sleep 300 & sleep 301; wait"],
            "dependsOn": ["base"],
        })),
    ]);
    let base = h.running_pid("base").await;
    let stubborn = h.running_pid("stubborn").await;
    eventually("stubborn's children run", || {
        (group_members(stubborn).len() >= 3).then_some(())
    })
    .await;
    let members = group_members(stubborn);
    let hooks = h.hooks.clone();
    let ops = h.ops.clone();
    if let Some(runtime) = h.runtime.as_ref() {
        let _ = runtime;
    }
    within("the stop hook", hooks.run(PATIENCE)).await;
    for pid in members.iter().chain([&base]) {
        assert!(!alive(*pid), "pid {pid} survived the stop hook");
    }
    assert!(group_members(stubborn).is_empty());
    assert!(group_members(base).is_empty());
    let err = ops.start("base").await.unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_that_cannot_run_does_not_hold_up_the_others() {
    let h = Harness::new();
    h.set_services(&[
        service(json!({"name": "broken", "command": [""]})),
        service(
            json!({"name": "after-broken", "command": ["sleep", "300"], "dependsOn": ["broken"]}),
        ),
        service(json!({
            "name": "fine",
            "command": ["sleep", "300"],
            "healthChecks": [{"name": "tls", "interval": "100ms", "timeout": "50ms",
                              "failureThreshold": 1,
                              "probe": {"http": {"url": "https://127.0.0.1:1/"}}}],
        })),
    ]);
    h.running_pid("fine").await;
    let broken = eventually("broken is failed", || {
        h.status("broken").filter(|s| s.state == RunState::Failed)
    })
    .await;
    assert!(
        broken.message.contains("argv is empty"),
        "{}",
        broken.message
    );
    let after = eventually("after-broken is failed", || {
        h.status("after-broken")
            .filter(|s| s.state == RunState::Failed)
    })
    .await;
    assert!(
        after.message.contains("depends on broken"),
        "{}",
        after.message
    );
    let check = eventually("fine/tls fails", || {
        h.check("fine/tls")
            .filter(|c| c.state == skerryd_core::resources::CheckState::Unhealthy)
    })
    .await;
    assert!(check.message.contains("https"), "{}", check.message);

    // Fixed, it runs; removed from the config, its status goes.
    h.set_services(&[
        service(json!({"name": "broken", "command": ["sleep", "300"]})),
        service(json!({"name": "fine", "command": ["sleep", "300"]})),
    ]);
    h.running_pid("broken").await;
    eventually("after-broken's status is gone", || {
        h.status("after-broken").is_none().then_some(())
    })
    .await;
    eventually("fine/tls is gone", || {
        h.check("fine/tls").is_none().then_some(())
    })
    .await;
    h.stop().await;
}
