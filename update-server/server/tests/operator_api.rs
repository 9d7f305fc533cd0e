//! The operator JSON API over real HTTP: the token (made 0600 at first start, 401 when
//! missing or wrong), releases, devices checked in over gRPC with a cursor, one device's
//! timeline, a rollout paused by failures with its reason and per-wave counts, operator
//! pause/resume/abort and pins, and bounds (ids, limits, body size).

#[path = "../../store/tests/support/pg_cluster.rs"]
mod pg_cluster;
mod support;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

use serde_json::Value;
use skerry_proto::fleet::v1 as pb;
use skerry_proto::fleet::v1::fleet_service_client::FleetServiceClient;
use skerry_release::Expiries;
use support::*;

fn call(
    addr: SocketAddr,
    method: &str,
    target: &str,
    token: Option<&str>,
    body: &str,
) -> (u16, Value) {
    let mut stream = TcpStream::connect(addr).unwrap();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let req = format!(
        "{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&raw[..split]);
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let value = serde_json::from_slice(&raw[split + 4..]).unwrap_or(Value::Null);
    (status, value)
}

fn request(
    device: &str,
    version: &str,
    health: i32,
    reports: Vec<pb::UpgradeReport>,
) -> pb::CheckInRequest {
    pb::CheckInRequest {
        device_id: device.into(),
        board: "pi".into(),
        version: version.into(),
        channel: "stable".into(),
        labels: HashMap::new(),
        slots: vec![],
        health: Some(pb::Health {
            state: health,
            failing_checks: vec!["app".into()]
                .into_iter()
                .filter(|_| health != pb::HealthState::Healthy as i32)
                .collect(),
        }),
        reports,
    }
}

fn failed(seq: u64) -> pb::UpgradeReport {
    pb::UpgradeReport {
        sequence: seq,
        target_version: "2.0.0".into(),
        step: pb::UpgradeStep::Failed as i32,
        reason: "probe failed".into(),
        at: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_read_and_steer_the_fleet_with_the_token() {
    operators_read_and_steer_the_fleet(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_read_and_steer_the_fleet_with_the_token_on_postgres() {
    let cluster = pg_cluster::PgCluster::start();
    operators_read_and_steer_the_fleet(Some(cluster.database())).await;
}

async fn operators_read_and_steer_the_fleet(database: Option<String>) {
    let s = TestServer::start(
        |srv, keys| {
            publish(
                srv,
                keys,
                &[("1.0.0", "stable"), ("2.0.0", "stable")],
                &Expiries::default(),
            )
        },
        move |config| config.database = database,
    )
    .await;
    let token_path = s.srv().join("keys/operator.token");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&token_path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let token = std::fs::read_to_string(&token_path)
        .unwrap()
        .trim()
        .to_string();
    let t = Some(token.as_str());
    let a = s.addr;

    // No token, a wrong one: 401 with a JSON error.
    let (st, v) = call(a, "GET", "/api/v1/releases", None, "");
    assert_eq!(st, 401);
    assert!(v["error"].as_str().unwrap().contains("operator token"));
    assert_eq!(
        call(
            a,
            "GET",
            "/api/v1/releases",
            Some("0123456789abcdef0123456789abcdef"),
            ""
        )
        .0,
        401
    );

    let (st, v) = call(a, "GET", "/api/v1/releases", t, "");
    assert_eq!(st, 200);
    assert_eq!(v["releases"].as_array().unwrap().len(), 2, "{v}");

    let (st, v) = call(
        a,
        "POST",
        "/api/v1/rollouts",
        t,
        r#"{"id":"v2","board":"pi","version":"2.0.0","max_bad":"0%"}"#,
    );
    assert_eq!(st, 201, "{v}");
    let (st, v) = call(
        a,
        "POST",
        "/api/v1/rollouts",
        t,
        r#"{"id":"v3","board":"pi","version":"3.0.0"}"#,
    );
    assert_eq!(st, 422, "a release the repository lacks: {v}");

    let channel = tonic::transport::Endpoint::from_shared(format!("http://{a}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut c = FleetServiceClient::new(channel);
    for i in 0..3 {
        c.check_in(request(
            &format!("dev-{i}"),
            "1.0.0",
            pb::HealthState::Healthy as i32,
            vec![],
        ))
        .await
        .unwrap();
    }
    c.check_in(request(
        "dev-1",
        "1.0.0",
        pb::HealthState::Degraded as i32,
        vec![failed(1)],
    ))
    .await
    .unwrap();

    let (_, v) = call(a, "GET", "/api/v1/rollouts", t, "");
    let r = &v["rollouts"][0];
    assert_eq!(r["state"], "paused", "{v}");
    assert_eq!(r["paused_automatically"], true);
    assert!(
        r["pause_reason"]
            .as_str()
            .unwrap()
            .contains("1 of 1 devices in wave 1"),
        "{r}"
    );
    assert_eq!(r["waves"][0]["failed"], 1);

    let (_, v) = call(a, "GET", "/api/v1/devices?limit=2", t, "");
    assert_eq!(v["devices"].as_array().unwrap().len(), 2);
    assert_eq!(v["next_after"], "dev-1");
    assert_eq!(v["devices"][1]["health"], "degraded: app");
    let (_, v) = call(a, "GET", "/api/v1/devices?after=dev-1&limit=2", t, "");
    assert_eq!(v["devices"][0]["id"], "dev-2");
    assert_eq!(v["next_after"], Value::Null);

    let (st, v) = call(a, "GET", "/api/v1/devices/dev-1", t, "");
    assert_eq!(st, 200);
    let kinds: Vec<&str> = v["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"failed"), "{kinds:?}");
    assert_eq!(call(a, "GET", "/api/v1/devices/nobody", t, "").0, 404);

    let (_, v) = call(a, "GET", "/api/v1/overview", t, "");
    assert_eq!(v["devices"], 3);

    assert_eq!(call(a, "POST", "/api/v1/rollouts/v2/resume", t, "").0, 200);
    assert_eq!(
        call(
            a,
            "POST",
            "/api/v1/rollouts/v2/pause",
            t,
            r#"{"note":"field report"}"#
        )
        .0,
        200
    );
    let (_, v) = call(a, "GET", "/api/v1/rollouts", t, "");
    assert!(v["rollouts"][0]["pause_reason"]
        .as_str()
        .unwrap()
        .contains("field report"));
    assert_eq!(call(a, "POST", "/api/v1/rollouts/v2/abort", t, "").0, 200);
    assert_eq!(call(a, "POST", "/api/v1/rollouts/nope/abort", t, "").0, 404);

    assert_eq!(
        call(
            a,
            "PUT",
            "/api/v1/devices/dev-0/pin",
            t,
            r#"{"version":"1.0.0"}"#
        )
        .0,
        200
    );
    let (_, v) = call(a, "GET", "/api/v1/pins", t, "");
    assert_eq!(v["pins"][0]["device"], "dev-0");
    assert_eq!(call(a, "DELETE", "/api/v1/devices/dev-0/pin", t, "").0, 200);
    assert_eq!(
        call(a, "GET", "/api/v1/pins", t, "").1["pins"]
            .as_array()
            .unwrap()
            .len(),
        0
    );

    // Bounds.
    let (st, v) = call(a, "GET", "/api/v1/devices/bad%2fid", t, "");
    assert_eq!(st, 400, "{v}");
    assert_eq!(call(a, "GET", "/api/v1/devices?limit=100000", t, "").0, 400);
    let big = format!(r#"{{"note":"{}"}}"#, "x".repeat(20_000));
    assert_eq!(call(a, "POST", "/api/v1/rollouts/v2/pause", t, &big).0, 413);
    assert_eq!(call(a, "POST", "/api/v1/rollouts", t, "[1]").0, 400);
    s.stop().await;
}

fn raw(addr: SocketAddr, target: &str, token: Option<&str>) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let req = format!("GET {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{auth}\r\n");
    stream.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8(raw).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    (
        head.split(' ').nth(1).unwrap().parse().unwrap(),
        body.to_string(),
    )
}

/// The value of one sample line `name{labels} value` in exposition text.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| {
            l.rsplit_once(' ')
                .filter(|(k, _)| *k == series)
                .map(|(_, v)| v.parse().unwrap())
        })
        .unwrap_or_else(|| panic!("no series {series} in\n{text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_check_ins_reports_and_rollout_states_and_the_dashboard_is_served() {
    metrics_and_dashboard(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_check_ins_reports_and_rollout_states_and_the_dashboard_is_served_on_postgres(
) {
    let cluster = pg_cluster::PgCluster::start();
    metrics_and_dashboard(Some(cluster.database())).await;
}

async fn metrics_and_dashboard(database: Option<String>) {
    let s = TestServer::start(
        |srv, keys| {
            publish(
                srv,
                keys,
                &[("1.0.0", "stable"), ("2.0.0", "stable")],
                &Expiries::default(),
            )
        },
        move |config| config.database = database,
    )
    .await;
    let token = std::fs::read_to_string(s.srv().join("keys/operator.token"))
        .unwrap()
        .trim()
        .to_string();
    let t = Some(token.as_str());
    let a = s.addr;
    assert_eq!(raw(a, "/metrics", None).0, 401);
    let (_, before) = raw(a, "/metrics", t);
    let base_check_ins = sample(&before, "skerry_check_ins_total");
    let base_failed = sample(&before, "skerry_reports_total{step=\"failed\"}");
    let base_latency = sample(&before, "skerry_db_check_in_seconds_count");

    call(
        a,
        "POST",
        "/api/v1/rollouts",
        t,
        r#"{"id":"v2","board":"pi","version":"2.0.0","max_bad":"0%"}"#,
    );
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{a}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut c = FleetServiceClient::new(channel);
    for i in 0..4 {
        c.check_in(request(
            &format!("m-{i}"),
            "1.0.0",
            pb::HealthState::Healthy as i32,
            vec![],
        ))
        .await
        .unwrap();
    }
    c.check_in(request(
        "m-0",
        "1.0.0",
        pb::HealthState::Healthy as i32,
        vec![failed(1)],
    ))
    .await
    .unwrap();

    let (st, text) = raw(a, "/metrics", t);
    assert_eq!(st, 200);
    // Counters are process-wide (other tests in this binary may add): at least ours.
    assert!(
        sample(&text, "skerry_check_ins_total") - base_check_ins >= 5.0,
        "{text}"
    );
    assert!(sample(&text, "skerry_reports_total{step=\"failed\"}") - base_failed >= 1.0);
    let count = sample(&text, "skerry_db_check_in_seconds_count");
    assert!(count - base_latency >= 5.0);
    assert_eq!(
        sample(&text, "skerry_db_check_in_seconds_bucket{le=\"+Inf\"}"),
        count
    );
    assert_eq!(
        sample(
            &text,
            "skerry_rollout_state{rollout=\"v2\",state=\"paused\"}"
        ),
        1.0
    );
    assert_eq!(
        sample(
            &text,
            "skerry_rollout_state{rollout=\"v2\",state=\"active\"}"
        ),
        0.0
    );

    let (st, page) = raw(a, "/dashboard/", None);
    assert_eq!(st, 200);
    assert!(page.contains("<script src=\"/dashboard/app.js\""));
    let (st, script) = raw(a, "/dashboard/app.js", None);
    assert_eq!(st, 200);
    assert!(script.contains("sessionStorage"));
    assert_eq!(raw(a, "/dashboard/../fleet.db", None).0, 404);
    s.stop().await;
}
