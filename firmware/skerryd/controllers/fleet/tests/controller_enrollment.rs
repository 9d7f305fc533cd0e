//! The fleet controller enrolling by itself: the real `skerryd --root` (a `DaemonBoard`
//! of skerry-hil) whose `FleetConfig` carries the join URL `token create --url`
//! printed, against the real `skerry-server --tls-listen` on 127.0.0.1. It enrolls once
//! (the token's single use), checks in over mutual TLS (the server's device record
//! shows it; a plaintext check-in as that device is refused), a restart reuses the
//! identity (same key, the token still used 1/1), and a revoked device stops, saying so.
//!
//! Both binaries are built by this test (`cargo build -p skerry-server -p skerryd`).

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::Value;
use skerry_api::pb;
use skerry_hil::daemon_scenario::decode_spec;
use skerry_hil::{DaemonBoard, DaemonBoardOptions};
use skerry_proto::fleet::v1::CheckInRequest;
use support::{binaries, Server};

async fn fleet_status(board: &DaemonBoard) -> anyhow::Result<Value> {
    let mut client = board.client(Some("os:reader")).await?;
    let answer = client
        .resource_get(pb::ResourceGetRequest {
            r#ref: Some(pb::ResourceRef {
                namespace: "fleet".into(),
                r#type: "FleetStatuses.fleet.skerry.dev".into(),
                id: "status".into(),
            }),
        })
        .await?
        .into_inner();
    decode_spec(&answer.resource.unwrap_or_default().spec_yaml)
}

/// Waits (at most 90 s) until the fleet status satisfies `done`; returns it.
async fn wait_status(board: &DaemonBoard, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let status = fleet_status(board).await;
        if let Ok(s) = &status {
            if done(s) {
                return s.clone();
            }
        }
        assert!(
            Instant::now() < deadline,
            "{what}: the fleet status stayed {status:?}\n{}",
            board.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn config(plain: SocketAddr, join: &str) -> String {
    format!(
        "apiVersion: skerry.dev/v1alpha1
kind: MachineConfig
hostname: dev-1
---
apiVersion: skerry.dev/v1alpha1
kind: FleetConfig
server: http://{plain}
pollInterval: 5s
join: '{join}'
"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_with_a_join_url_enrolls_once_checks_in_over_mutual_tls_and_stops_when_revoked() {
    let (server_bin, skerryd) = binaries();
    let tmp = tempfile::tempdir().unwrap();
    let (server, tls) = Server::start(&server_bin, tmp.path());
    let join = join_url(&server, tls);
    let options = DaemonBoardOptions {
        config: Some(config(server.plain, &join)),
        ..DaemonBoardOptions::default()
    };
    let mut board = DaemonBoard::build(&tmp.path().join("board"), &skerryd, options).unwrap();
    board.power_on().unwrap();

    let status = wait_status(&board, "the first mutual-TLS check-in", |s| {
        s["transport"] == "mutual TLS" && s["last_answer"].as_u64().unwrap_or(0) > 0
    })
    .await;
    assert_eq!(
        status["server"],
        format!("https://localhost:{}", tls.port()),
        "{status}"
    );
    let seen = server
        .device("dev-1")
        .unwrap_or_else(|| panic!("the server has no record of dev-1:\n{}", server.log()));
    assert_eq!(seen["board"], skerry_hil::updates::BOARD, "{seen}");
    assert!(server.cli(&["token", "list"]).contains("used 1/1"));
    let identity = board.root().join("var/skerry/fleet/identity");
    let key = std::fs::read(identity.join("device.key")).unwrap();
    // Enrolled, the device is refused in plaintext: the check-ins that arrived were mutual TLS.
    let plain = skerryd_fleet::client::check_in(
        &format!("http://{}", server.plain),
        CheckInRequest {
            device_id: "dev-1".into(),
            board: skerry_hil::updates::BOARD.into(),
            version: "1.0.0".into(),
            channel: "stable".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert!(plain.to_string().contains("mutual TLS"), "{plain}");

    // A restart reuses the identity: the token (one use, spent) is not asked again.
    board.stop().unwrap();
    let before = seen["last_seen"].as_u64().unwrap();
    board.power_on().unwrap();
    wait_status(&board, "the check-in after the restart", |s| {
        s["transport"] == "mutual TLS" && s["last_answer"].as_u64().unwrap_or(0) > 0
    })
    .await;
    assert_eq!(std::fs::read(identity.join("device.key")).unwrap(), key);
    assert!(server.cli(&["token", "list"]).contains("used 1/1"));
    let again = server.device("dev-1").unwrap();
    assert!(again["last_seen"].as_u64().unwrap() >= before, "{again}");

    // Revoked: the next check-in is refused and the client stops, saying why.
    server.cli(&["device", "revoke", "dev-1"]);
    let stopped = wait_status(&board, "the stop after the revocation", |s| {
        s["transport"] == "stopped"
    })
    .await;
    let reason = stopped["last_error"].as_str().unwrap_or_default();
    assert!(
        reason.contains("refused this device's identity") && reason.contains("revoked"),
        "{stopped}"
    );
    board.stop().unwrap();
}

/// Replaces the kernel command line the daemon reads (`run/cmdline`), as a bootloader
/// passing `skerry.join=` would have.
fn kernel_args(board: &DaemonBoard, join: &str) {
    let path = board.root().join("run/cmdline");
    std::fs::write(&path, format!("skerry.slot=A quiet skerry.join={join}\n")).unwrap();
}

fn join_url(server: &Server, tls: SocketAddr) -> String {
    let printed = support::token_create(&server.bin, &server.data, tls);
    printed
        .lines()
        .find_map(|l| l.strip_prefix("skerry.join="))
        .unwrap_or_else(|| panic!("no join URL in {printed}"))
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kernel_argument_enrolls_and_failures_are_reported_without_losing_the_identity() {
    let (server_bin, skerryd) = binaries();
    let tmp = tempfile::tempdir().unwrap();
    let (server, tls) = Server::start(&server_bin, tmp.path());
    // No join URL: today's plaintext check-in, which this server refuses.
    let options = DaemonBoardOptions {
        config: Some(format!(
            "apiVersion: skerry.dev/v1alpha1\nkind: MachineConfig\nhostname: dev-2\n---\napiVersion: skerry.dev/v1alpha1\nkind: FleetConfig\nserver: http://{}\n",
            server.plain
        )),
        ..DaemonBoardOptions::default()
    };
    let mut board = DaemonBoard::build(&tmp.path().join("board"), &skerryd, options).unwrap();
    board.power_on().unwrap();
    let plain = wait_status(&board, "the plaintext check-in", |s| {
        s["transport"] == "plaintext" && !s["last_error"].as_str().unwrap_or("").is_empty()
    })
    .await;
    assert_eq!(
        plain["server"],
        format!("http://{}", server.plain),
        "{plain}"
    );

    // A join URL pinning another CA: reported, nothing sent (the token stays unused).
    let join = join_url(&server, tls);
    let (head, _) = join.split_once("&ca=sha256:").unwrap();
    kernel_args(&board, &format!("{head}&ca=sha256:{}", "0".repeat(64)));
    let pin = wait_status(&board, "the CA pin refusal", |s| {
        s["last_error"].as_str().unwrap_or("").contains("pinned CA")
    })
    .await;
    assert_eq!(pin["transport"], "enrolling", "{pin}");
    assert!(
        pin["last_error"].as_str().unwrap().contains("skerry.join="),
        "{pin}"
    );
    assert!(server.cli(&["token", "list"]).contains("used 0/1"));

    // The right one: enrolled, then mutual TLS.
    kernel_args(&board, &join);
    wait_status(
        &board,
        "the mutual-TLS check-in by the kernel argument",
        |s| s["transport"] == "mutual TLS" && s["last_answer"].as_u64().unwrap_or(0) > 0,
    )
    .await;
    assert!(server.device("dev-2").is_some(), "{}", server.log());
    let identity = board.root().join("var/skerry/fleet/identity");
    let key = std::fs::read(identity.join("device.key")).unwrap();

    // Another token whose secret is wrong: refused by the server, reported; the
    // identity that works is kept.
    let other = join_url(&server, tls);
    let (id, rest) = other.split_once("token=").unwrap();
    let (token, ca) = rest.split_once('&').unwrap();
    let (token_id, _) = token.split_once('.').unwrap();
    kernel_args(
        &board,
        &format!("{id}token={token_id}.{}&{ca}", "f".repeat(64)),
    );
    let refused = wait_status(&board, "the token refusal", |s| {
        s["last_error"]
            .as_str()
            .unwrap_or("")
            .contains("refused the enrollment")
    })
    .await;
    assert_eq!(refused["transport"], "enrolling", "{refused}");
    assert_eq!(std::fs::read(identity.join("device.key")).unwrap(), key);
    assert!(identity.join("device.crt").exists());
    board.stop().unwrap();
}
