//! Scale-out: two server instances on one PostgreSQL database and one data directory.
//! Devices (tonic clients) send every check-in to both instances at once, as a device
//! whose answer was lost resends to whichever instance the balancer picks: each report
//! is stored once, acknowledged sequences and rollout counts are exact. Both instances
//! try to re-sign an always-due timestamp every 50 ms: only the lease holder signs, no
//! version is signed twice, and when it stops the other takes over. The operator API
//! of either instance shows the same counts.

mod support;

#[path = "../../store/tests/support/pg_cluster.rs"]
mod pg_cluster;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use skerry_fleet_store::{FleetStore, PgStore};
use skerry_proto::fleet::v1 as pb;
use skerry_proto::fleet::v1::fleet_service_client::FleetServiceClient;
use skerry_release::Expiries;
use skerry_rollout::{HealthGate, Release, Rollout, RolloutState, UnixTime, WaveSchedule};
use skerry_server::timestamp::ResignPolicy;
use support::*;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};
use tonic::transport::Channel;

const DEVICES: usize = 12;

/// The upgrade one device reports, step by step; device `i` ends as `ends[i % 3]`.
fn steps(i: usize) -> Vec<pb::UpgradeStep> {
    use pb::UpgradeStep as S;
    let end = [S::Committed, S::Failed, S::RolledBack][i % 3];
    vec![
        S::Downloading,
        S::Installed,
        S::Rebooting,
        S::Probation,
        end,
    ]
}

fn request(device: &str, reports: Vec<pb::UpgradeReport>) -> pb::CheckInRequest {
    pb::CheckInRequest {
        device_id: device.into(),
        board: "pi".into(),
        version: "1.0.0".into(),
        channel: "stable".into(),
        labels: HashMap::new(),
        slots: vec![pb::SlotState {
            name: "a".into(),
            version: "1.0.0".into(),
            status: pb::SlotStatus::Good as i32,
            booted: true,
        }],
        health: Some(pb::Health {
            state: pb::HealthState::Healthy as i32,
            failing_checks: vec![],
        }),
        reports,
    }
}

async fn client(s: &TestServer) -> FleetServiceClient<Channel> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", s.addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    FleetServiceClient::new(channel)
}

async fn instance(data: &std::path::Path, url: &str) -> (TestServer, UnboundedReceiver<u64>) {
    let (tx, rx) = unbounded_channel();
    let (data, url) = (data.to_path_buf(), url.to_string());
    let s = TestServer::start(
        |_, _| {},
        move |c| {
            c.data = data;
            c.database = Some(url);
            c.resign_every = Duration::from_millis(50);
            // Always due: every round of the holder signs a new version.
            c.resign = ResignPolicy {
                renew_before: Duration::from_secs(30 * 86_400),
                validity: Duration::from_secs(7 * 86_400),
            };
            c.resigned = Some(tx);
        },
    )
    .await;
    (s, rx)
}

/// One device: sends each new report (with all not yet acknowledged) to both instances
/// at once, then forgets what either acknowledged.
async fn device(
    i: usize,
    mut a: FleetServiceClient<Channel>,
    mut b: FleetServiceClient<Channel>,
) -> u64 {
    let id = format!("dev-{i}");
    let mut pending: Vec<pb::UpgradeReport> = Vec::new();
    let mut acked = 0;
    for (n, step) in steps(i).into_iter().enumerate() {
        pending.push(pb::UpgradeReport {
            sequence: n as u64 + 1,
            target_version: "2.0.0".into(),
            step: step as i32,
            reason: String::new(),
            at: None,
        });
        let (ra, rb) = tokio::join!(
            a.check_in(request(&id, pending.clone())),
            b.check_in(request(&id, pending.clone()))
        );
        let (ra, rb) = (ra.unwrap().into_inner(), rb.unwrap().into_inner());
        acked = acked
            .max(ra.acknowledged_sequence)
            .max(rb.acknowledged_sequence);
        pending.retain(|r| r.sequence > acked);
    }
    acked
}

fn drain(rx: &mut UnboundedReceiver<u64>) -> Vec<u64> {
    let mut out = Vec::new();
    while let Ok(v) = rx.try_recv() {
        out.push(v);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_one_database_count_exactly_and_one_signs() {
    let cluster = pg_cluster::PgCluster::start();
    let url = cluster.database();
    let shared = tempfile::tempdir().unwrap();
    let data = shared.path().join("srv");
    let keys = shared.path().join("offline-keys");
    publish(
        &data,
        &keys,
        &[("1.0.0", "stable"), ("2.0.0", "stable")],
        &Expiries::default(),
    );
    std::fs::create_dir_all(data.join("keys")).unwrap();
    std::fs::copy(keys.join("timestamp.key"), data.join("keys/timestamp.key")).unwrap();

    let (a, mut signed_a) = instance(&data, &url).await;
    let (b, mut signed_b) = instance(&data, &url).await;
    let u = url.clone();
    let store = Arc::new(
        tokio::task::spawn_blocking(move || PgStore::open(&u))
            .await
            .unwrap()
            .unwrap(),
    );
    let s = Arc::clone(&store);
    tokio::task::spawn_blocking(move || {
        s.create_rollout(&Rollout {
            id: "v2".into(),
            release: Release {
                board: "pi".into(),
                version: "2.0.0".parse().unwrap(),
                channel: "stable".into(),
            },
            started_at: UnixTime(T0),
            waves: WaveSchedule::all_at_once(),
            // Never pauses itself here: the counts are what is checked.
            gate: HealthGate {
                max_bad_permille: 1000,
                min_sample: 1,
            },
            state: RolloutState::Active,
            force: true,
        })
    })
    .await
    .unwrap()
    .unwrap();

    let (ca, cb) = (client(&a).await, client(&b).await);
    let devices: Vec<_> = (0..DEVICES)
        .map(|i| tokio::spawn(device(i, ca.clone(), cb.clone())))
        .collect();
    for (i, d) in devices.into_iter().enumerate() {
        assert_eq!(
            d.await.unwrap(),
            steps(i).len() as u64,
            "dev-{i} acknowledged"
        );
    }

    let s = Arc::clone(&store);
    let (rollouts, devices) = tokio::task::spawn_blocking(move || {
        let devices: Vec<_> = (0..DEVICES)
            .map(|i| {
                let id = format!("dev-{i}");
                (s.device(&id).unwrap().unwrap(), s.timeline(&id).unwrap())
            })
            .collect();
        (s.rollouts().unwrap(), devices)
    })
    .await
    .unwrap();
    for (i, (record, timeline)) in devices.iter().enumerate() {
        assert_eq!(record.acknowledged, steps(i).len() as u64);
        let reported: Vec<&str> = timeline
            .iter()
            .map(|e| e.kind.as_str())
            .filter(|k| !["enrolled", "offered"].contains(k))
            .collect();
        let expected: Vec<&str> = steps(i)
            .iter()
            .map(|s| match s {
                pb::UpgradeStep::Downloading => "downloading",
                pb::UpgradeStep::Installed => "installed",
                pb::UpgradeStep::Rebooting => "rebooting",
                pb::UpgradeStep::Probation => "probation",
                pb::UpgradeStep::Committed => "committed",
                pb::UpgradeStep::Failed => "failed",
                _ => "rolled_back",
            })
            .collect();
        assert_eq!(
            reported, expected,
            "dev-{i}: every report stored once, in order"
        );
        assert_eq!(timeline.iter().filter(|e| e.kind == "enrolled").count(), 1);
    }
    let stats = &rollouts[0].stats[0];
    let third = DEVICES as u32 / 3;
    assert_eq!(
        (
            stats.started,
            stats.committed,
            stats.failed,
            stats.rolled_back
        ),
        (DEVICES as u32, third, third, third)
    );

    // The operator API answers the same on either instance: the counts are the
    // database's, not an instance's.
    let token = std::fs::read_to_string(data.join("keys/operator.token")).unwrap();
    let bearer = format!("Bearer {}", token.trim());
    let mut answers = Vec::new();
    for addr in [a.addr, b.addr] {
        let bearer = bearer.clone();
        let reply = tokio::task::spawn_blocking(move || {
            get(
                addr,
                "/api/v1/rollouts",
                &[("Authorization", bearer.as_str())],
            )
        })
        .await
        .unwrap();
        assert_eq!(
            reply.status,
            200,
            "{}",
            String::from_utf8_lossy(&reply.body)
        );
        answers.push(serde_json::from_slice::<serde_json::Value>(&reply.body).unwrap());
    }
    assert_eq!(answers[0], answers[1]);
    let wave = &answers[0]["rollouts"][0]["waves"][0];
    assert_eq!(
        (
            &wave["started"],
            &wave["committed"],
            &wave["failed"],
            &wave["rolled_back"]
        ),
        (
            &serde_json::json!(DEVICES),
            &serde_json::json!(third),
            &serde_json::json!(third),
            &serde_json::json!(third)
        ),
        "{wave}"
    );

    // Both instances have tried to re-sign every 50 ms all along: one signed.
    let (from_a, from_b) = (drain(&mut signed_a), drain(&mut signed_b));
    assert!(
        from_a.is_empty() != from_b.is_empty(),
        "exactly one instance signs: a {from_a:?}, b {from_b:?}"
    );
    let (holder, other, mut holder_rx, mut other_rx, mut first) = if from_a.is_empty() {
        (b, a, signed_b, signed_a, from_b)
    } else {
        (a, b, signed_a, signed_b, from_a)
    };
    // The holder stops (giving the lease up); the other takes over with newer versions.
    holder.stop().await;
    first.extend(drain(&mut holder_rx));
    assert!(first.windows(2).all(|w| w[0] < w[1]), "{first:?}");
    let mut taken_over = Vec::new();
    for _ in 0..100 {
        taken_over.extend(drain(&mut other_rx));
        if taken_over.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        taken_over.len() >= 2,
        "the other instance took over: {taken_over:?}"
    );
    let all: BTreeSet<u64> = first.iter().chain(&taken_over).copied().collect();
    assert_eq!(
        all.len(),
        first.len() + taken_over.len(),
        "a version signed twice"
    );
    assert!(taken_over[0] > *first.last().unwrap());
    drop(store);
    other.stop().await;
}
