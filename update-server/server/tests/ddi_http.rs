//! hawkBit DDI over real HTTP on 127.0.0.1 (a raw client): anonymous and wrong-token
//! polls refused, a target token's poll offered the rollout's release as a
//! deploymentBase with the `.swu`'s hashes, the artifact downloaded (whole and by range),
//! feedback success and failure counted by the rollout like gRPC reports, configData
//! stored and bounded.

#[path = "../../store/tests/support/pg_cluster.rs"]
mod pg_cluster;
mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

use semver::Version;
use serde_json::Value;
use sha2::{Digest, Sha256};
use skerry_fleet_store::{DdiTarget, RolloutWithStats, TimelineEntry};
use skerry_release::Expiries;
use skerry_rollout::UnixTime;
use skerry_server::admin::{self, NewRollout};
use skerry_server::fleet_db::FleetDb;
use support::{TestServer, T0};

fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    auth: Option<&str>,
    body: &str,
) -> (u16, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(a) = auth {
        req.push_str(&format!("Authorization: {a}\r\n"));
    }
    req.push_str("Content-Type: application/json\r\n\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let status = String::from_utf8_lossy(&raw[9..12]).parse().unwrap();
    (status, raw[split + 4..].to_vec())
}

fn rollout(id: &str, version: &str) -> NewRollout {
    NewRollout {
        id: id.into(),
        board: "pi".into(),
        version: version.into(),
        channel: "stable".into(),
        waves: "0:100%".into(),
        max_bad: "50%".into(),
        min_sample: 1,
        force: false,
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

/// On a blocking thread (PostgreSQL's client blocks): the rollout `id` and `device`'s
/// timeline and version.
async fn records(
    db: &FleetDb,
    id: &'static str,
    device: &'static str,
) -> (RolloutWithStats, Vec<TimelineEntry>, Version) {
    let db = db.clone();
    blocking(move || {
        let rollout = db
            .store
            .rollouts()
            .unwrap()
            .into_iter()
            .find(|r| r.rollout.id == id)
            .unwrap();
        let timeline = db.store.timeline(device).unwrap();
        let version = db.store.device(device).unwrap().unwrap().version;
        (rollout, timeline, version)
    })
    .await
}

async fn create_rollout(db: &FleetDb, id: &str, version: &str) {
    let (db, new) = (db.clone(), rollout(id, version));
    blocking(move || admin::create_rollout(&db, &new, UnixTime(T0)).unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ddi_target_takes_a_deployment_and_its_feedback_is_counted() {
    ddi_target_takes_a_deployment(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ddi_target_takes_a_deployment_and_its_feedback_is_counted_on_postgres() {
    let cluster = pg_cluster::PgCluster::start();
    ddi_target_takes_a_deployment(Some(cluster.database())).await;
}

async fn ddi_target_takes_a_deployment(database: Option<String>) {
    let url = database.clone();
    let server = TestServer::start(
        |srv, keys| {
            support::publish(
                srv,
                keys,
                &[("2.0.0", "stable"), ("3.0.0", "stable")],
                &Expiries::default(),
            );
            std::fs::create_dir_all(srv.join("swu/pi")).unwrap();
            std::fs::write(srv.join("swu/pi/2.0.0.swu"), b"pretend swu 2").unwrap();
            std::fs::write(srv.join("swu/pi/3.0.0.swu"), b"pretend swu 3").unwrap();
        },
        move |config| config.database = database,
    )
    .await;
    let srv = server.srv();
    let db = blocking(move || FleetDb::open(&srv, url.as_deref()).unwrap()).await;
    let target = DdiTarget {
        device: "dev1".into(),
        board: "pi".into(),
        channel: "stable".into(),
        version: Version::new(1, 0, 0),
    };
    let d = db.clone();
    let token =
        blocking(move || skerry_server::ddi::admin::add_target(&d, &target, UnixTime(T0)).unwrap())
            .await;
    create_rollout(&db, "r2", "2.0.0").await;
    let addr = server.addr;
    let auth = format!("TargetToken {token}");
    let poll = "/DEFAULT/controller/v1/dev1";

    // Refusals.
    let (st, _) = blocking(move || send(addr, "GET", poll, None, "")).await;
    assert_eq!(st, 401, "anonymous poll");
    let (st, _) = blocking(move || send(addr, "GET", poll, Some("TargetToken nope"), "")).await;
    assert_eq!(st, 401, "wrong token");
    let (st, _) = blocking(move || send(addr, "GET", poll, Some("GatewayToken nope"), "")).await;
    assert_eq!(st, 401, "no gateway token configured");
    let a = auth.clone();
    let (st, _) =
        blocking(move || send(addr, "GET", "/DEFAULT/controller/v1/dev2", Some(&a), "")).await;
    assert_eq!(st, 401, "another target's id with this token");

    // The poll offers the rollout's release.
    let a = auth.clone();
    let (st, body) = blocking(move || send(addr, "GET", poll, Some(&a), "")).await;
    assert_eq!(st, 200);
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["config"]["polling"]["sleep"], "00:05:00");
    assert!(v["_links"]["configData"]["href"].is_string());
    let href = v["_links"]["deploymentBase"]["href"]
        .as_str()
        .unwrap()
        .to_string();
    let path = href.split_once(&addr.to_string()).unwrap().1.to_string();
    let a = auth.clone();
    let p = path.clone();
    let (st, body) = blocking(move || send(addr, "GET", &p, Some(&a), "")).await;
    assert_eq!(st, 200);
    let d: Value = serde_json::from_slice(&body).unwrap();
    let art = &d["deployment"]["chunks"][0]["artifacts"][0];
    assert_eq!(d["deployment"]["update"], "forced");
    assert_eq!(art["filename"], "2.0.0.swu");
    assert_eq!(art["size"], 13);
    assert_eq!(
        art["hashes"]["sha256"],
        hex(&Sha256::digest(b"pretend swu 2"))
    );
    let dl = art["_links"]["download-http"]["href"].as_str().unwrap();
    let dl = dl.split_once(&addr.to_string()).unwrap().1.to_string();
    let a = auth.clone();
    let (st, body) = blocking(move || send(addr, "GET", &dl, Some(&a), "")).await;
    assert_eq!((st, body.as_slice()), (200, &b"pretend swu 2"[..]));

    // A malformed feedback is refused by name; success is counted.
    let fb = format!("{path}/feedback");
    let (a, f) = (auth.clone(), fb.clone());
    let (st, body) = blocking(move || {
        send(
            addr,
            "POST",
            &f,
            Some(&a),
            r#"{"status":{"execution":"bogus"}}"#,
        )
    })
    .await;
    assert_eq!(st, 400);
    assert!(String::from_utf8_lossy(&body).contains("status.execution"));
    let (a, f) = (auth.clone(), fb.clone());
    let (st, _) = blocking(move || {
        send(
            addr,
            "POST",
            &f,
            Some(&a),
            r#"{"status":{"execution":"proceeding","result":{"finished":"none"}}}"#,
        )
    })
    .await;
    assert_eq!(st, 200);
    let (a, f) = (auth.clone(), fb.clone());
    let (st, _) = blocking(move || {
        send(
            addr,
            "POST",
            &f,
            Some(&a),
            r#"{"status":{"execution":"closed","result":{"finished":"success"},"details":["ok"]}}"#,
        )
    })
    .await;
    assert_eq!(st, 200);
    let (r2, timeline, version) = records(&db, "r2", "dev1").await;
    let kinds: Vec<String> = timeline.into_iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        [
            "enrolled",
            "offered",
            "downloading",
            "running",
            "installed",
            "committed"
        ]
    );
    assert_eq!((r2.stats[0].started, r2.stats[0].committed), (1, 1));
    assert_eq!(version, Version::new(2, 0, 0));

    // Nothing more to do at 2.0.0; a 3.0.0 rollout's deployment fails and is counted as failed.
    let a = auth.clone();
    let (_, body) = blocking(move || send(addr, "GET", poll, Some(&a), "")).await;
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert!(v["_links"].get("deploymentBase").is_none(), "{v}");
    create_rollout(&db, "r3", "3.0.0").await;
    let a = auth.clone();
    let (_, body) = blocking(move || send(addr, "GET", poll, Some(&a), "")).await;
    let v: Value = serde_json::from_slice(&body).unwrap();
    let href = v["_links"]["deploymentBase"]["href"].as_str().unwrap();
    let fb = format!("{}/feedback", href.split_once(&addr.to_string()).unwrap().1);
    let a = auth.clone();
    let (st, _) = blocking(move || send(addr, "POST", &fb, Some(&a), r#"{"status":{"execution":"closed","result":{"finished":"failure"},"details":["hash mismatch"]}}"#)).await;
    assert_eq!(st, 200);
    let (r3, mut timeline, _) = records(&db, "r3", "dev1").await;
    assert_eq!((r3.stats[0].started, r3.stats[0].failed), (1, 1));
    let last = timeline.pop().unwrap();
    assert!(
        last.kind == "failed" && last.detail.contains("hash mismatch"),
        "{last:?}"
    );

    // configData: stored; too many attributes refused.
    let a = auth.clone();
    let (st, _) = blocking(move || {
        send(
            addr,
            "PUT",
            "/DEFAULT/controller/v1/dev1/configData",
            Some(&a),
            r#"{"mode":"merge","data":{"hw":"rev2"}}"#,
        )
    })
    .await;
    assert_eq!(st, 200);
    let many: serde_json::Map<String, Value> = (0..100)
        .map(|i| (format!("k{i}"), Value::from("v")))
        .collect();
    let body = serde_json::json!({"data": many}).to_string();
    let a = auth.clone();
    let (st, _) = blocking(move || {
        send(
            addr,
            "PUT",
            "/DEFAULT/controller/v1/dev1/configData",
            Some(&a),
            &body,
        )
    })
    .await;
    assert_eq!(st, 400);
    let attributes = blocking(move || db.store.ddi_attributes("dev1").unwrap().unwrap()).await;
    assert_eq!(attributes.get("hw").map(String::as_str), Some("rev2"));
    server.stop().await;
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
