//! Health checks from the config: exec, TCP and HTTP probes become HealthCheckStatus
//! resources and `health.changed` events; a critical one reports to the watchdog's
//! vitals; the Health answer's overall verdict.

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;
use skerry_api::pb;
use skerry_config::kinds::ServiceConfig;
use skerry_watchdog::gate::Problem;
use skerryd_core::resources::CheckState;
use skerryd_services::ServiceHealth;

/// Registers the leases the gate wants besides health checks, so `Vitals::check`
/// speaks about the checks alone.
fn only_checks_matter(h: &Harness) {
    let long = Duration::from_secs(3_600);
    std::mem::forget(h.vitals.controller("test-controller", long).unwrap());
    std::mem::forget(h.vitals.state_writes("test-store", long).unwrap());
}

/// Checks that the vitals withhold the feed (`why`) naming the check `id` as failing.
fn assert_vitals_fail_on(h: &Harness, id: &str, why: &str) {
    let problems = h.vitals.check().expect_err(why);
    assert!(
        problems
            .problems
            .iter()
            .any(|p| matches!(p, Problem::Failing { name, .. } if name == id)),
        "{problems}"
    );
}

/// Service `svc` with a critical TCP check `port` on `port`, then `extra` if any, then
/// a check `closed`, not critical and failing: it does not count.
fn svc_checking(port: u16, extra: Option<serde_json::Value>) -> ServiceConfig {
    let mut checks = vec![json!(
        {"name": "port", "critical": true, "interval": "100ms", "timeout": "50ms",
         "probe": {"tcp": {"address": format!("127.0.0.1:{port}")}}}
    )];
    checks.extend(extra);
    checks.push(json!(
        {"name": "closed", "interval": "100ms", "timeout": "50ms", "failureThreshold": 1,
         "probe": {"tcp": {"address": format!("127.0.0.1:{}", free_port())}}}
    ));
    service(json!({
        "name": "svc",
        "command": ["sleep", "300"],
        "healthChecks": checks,
    }))
}

fn state_of(h: &Harness, id: &str) -> Option<CheckState> {
    h.check(id).map(|c| c.state)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_critical_check_turns_unhealthy_and_fails_the_vitals() {
    need("test");
    let h = Harness::new();
    only_checks_matter(&h);
    let flag = h.path("ok");
    std::fs::write(&flag, b"").unwrap();
    h.set_services(&[service(json!({
        "name": "app",
        "command": ["sleep", "300"],
        "healthChecks": [{
            "name": "flag", "critical": true, "interval": "100ms", "timeout": "80ms",
            "successThreshold": 1, "failureThreshold": 2,
            "probe": {"exec": {"command": ["test", "-e", flag.display().to_string()]}},
        }],
    }))]);
    eventually("app/flag is healthy", || {
        (state_of(&h, "app/flag") == Some(CheckState::Healthy)).then_some(())
    })
    .await;
    h.vitals
        .check()
        .expect("a passing critical check lets the watchdog be fed");
    assert_eq!(h.status("app").unwrap().health, ServiceHealth::Healthy);
    let answer = h.ops.health().await.unwrap();
    assert_eq!(answer.overall, pb::HealthStatus::Healthy as i32);

    std::fs::remove_file(&flag).unwrap();
    eventually("app/flag is unhealthy", || {
        (state_of(&h, "app/flag") == Some(CheckState::Unhealthy)).then_some(())
    })
    .await;
    let status = h.check("app/flag").unwrap();
    assert!(status.critical);
    assert!(status.consecutive_failures >= 2);
    assert!(status.message.contains("test exited"), "{}", status.message);
    assert_vitals_fail_on(
        &h,
        "app/flag",
        "a failing critical check withholds the feed",
    );
    assert_eq!(h.status("app").unwrap().health, ServiceHealth::Unhealthy);
    let answer = h.ops.health().await.unwrap();
    assert_eq!(answer.overall, pb::HealthStatus::Unhealthy as i32);
    assert_eq!(answer.checks.len(), 1);
    assert_eq!(answer.checks[0].name, "app/flag");
    assert_eq!(answer.checks[0].status, pb::HealthStatus::Unhealthy as i32);

    let changes: Vec<String> = h
        .events_of("health.changed")
        .into_iter()
        .filter(|e| e.attributes.get("check").map(String::as_str) == Some("app/flag"))
        .filter_map(|e| e.attributes.get("state").cloned())
        .collect();
    assert_eq!(changes, ["healthy", "unhealthy"]);

    // It recovers, and so does the watchdog's verdict.
    std::fs::write(&flag, b"").unwrap();
    eventually("app/flag is healthy again", || {
        (state_of(&h, "app/flag") == Some(CheckState::Healthy)).then_some(())
    })
    .await;
    h.vitals.check().expect("recovered");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overall_is_unknown_until_every_critical_check_has_a_verdict() {
    need("sleep");
    let h = Harness::new();
    only_checks_matter(&h);
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        // Kept open: the TCP check passes while the test runs.
        std::mem::forget(listener);
        port
    };
    let slow = json!(
        // A probe that outlasts the test: no verdict.
        {"name": "slow", "critical": true, "interval": "60s", "timeout": "50s",
         "probe": {"exec": {"command": ["sleep", "100"]}}}
    );
    h.set_services(&[svc_checking(port, Some(slow))]);
    eventually("svc/port is healthy and svc/closed unhealthy", || {
        (state_of(&h, "svc/port") == Some(CheckState::Healthy)
            && state_of(&h, "svc/closed") == Some(CheckState::Unhealthy))
        .then_some(())
    })
    .await;
    let answer = h.ops.health().await.unwrap();
    assert_eq!(answer.checks.len(), 3);
    assert_eq!(
        answer.overall,
        pb::HealthStatus::Unknown as i32,
        "{answer:?}"
    );
    assert_eq!(state_of(&h, "svc/slow"), Some(CheckState::Unknown));
    assert_vitals_fail_on(&h, "svc/slow", "a critical check without a result gates");

    // Without the slow check, only healthy critical checks remain: HEALTHY, though a
    // non-critical one fails.
    h.set_services(&[svc_checking(port, None)]);
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let answer = loop {
        let answer = h.ops.health().await.unwrap();
        if answer.overall == pb::HealthStatus::Healthy as i32 && answer.checks.len() == 2 {
            break answer;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never healthy: {answer:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(answer.checks.len(), 2);
    assert!(
        h.check("svc/slow").is_none(),
        "a removed check's status goes"
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_check_follows_a_real_server() {
    need("python3");
    let h = Harness::new();
    let port = free_port();
    let root = h.path("www");
    std::fs::create_dir(&root).unwrap();
    std::fs::write(root.join("ready"), b"yes").unwrap();
    h.set_services(&[service(json!({
        "name": "web",
        "command": ["python3", "-m", "http.server", "--bind", "127.0.0.1",
                    "--directory", root.display().to_string(), port.to_string()],
        "healthChecks": [{
            "name": "ready", "critical": true, "interval": "100ms", "timeout": "80ms",
            "failureThreshold": 1,
            "probe": {"http": {"url": format!("http://127.0.0.1:{port}/ready")}},
        }],
    }))]);
    eventually("web/ready is healthy", || {
        (state_of(&h, "web/ready") == Some(CheckState::Healthy)).then_some(())
    })
    .await;
    std::fs::remove_file(root.join("ready")).unwrap();
    eventually("web/ready is unhealthy (404)", || {
        h.check("web/ready")
            .filter(|c| c.state == CheckState::Unhealthy)
            .map(|c| c.message)
    })
    .await;
    let message = h.check("web/ready").unwrap().message;
    assert!(message.contains("404"), "{message}");
    h.stop().await;
}
