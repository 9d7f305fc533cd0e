//! Check-ins through gRPC with a tonic client: offers by the rollout decision, reports
//! stored once and acknowledged, the timeline kept and bounded, a rollout pausing itself
//! on a rollback, and hostile requests refused with the field named.

mod support;

use std::collections::HashMap;

use skerry_fleet_store::{FleetStore, RolloutAction, SqliteStore, TIMELINE_LIMIT};
use skerry_proto::fleet::v1 as pb;
use skerry_proto::fleet::v1::fleet_service_client::FleetServiceClient;
use skerry_release::Expiries;
use skerry_rollout::{
    HealthGate, PauseReason, Release, Rollout, RolloutState, UnixTime, WaveSchedule,
};
use support::*;
use tonic::transport::Channel;
use tonic::Code;

async fn server() -> TestServer {
    TestServer::start(
        |srv, keys| {
            publish(
                srv,
                keys,
                &[("1.0.0", "stable"), ("2.0.0", "stable")],
                &Expiries::default(),
            )
        },
        |_| {},
    )
    .await
}

async fn client(s: &TestServer) -> FleetServiceClient<Channel> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", s.addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    FleetServiceClient::new(channel)
}

fn store(s: &TestServer) -> SqliteStore {
    SqliteStore::open(&s.srv().join("fleet.db")).unwrap()
}

fn rollout_v2(gate: HealthGate) -> Rollout {
    Rollout {
        id: "v2".into(),
        release: Release {
            board: "pi".into(),
            version: "2.0.0".parse().unwrap(),
            channel: "stable".into(),
        },
        started_at: UnixTime(T0),
        waves: WaveSchedule::all_at_once(),
        gate,
        state: RolloutState::Active,
        force: false,
    }
}

fn request(device: &str, version: &str, reports: Vec<pb::UpgradeReport>) -> pb::CheckInRequest {
    pb::CheckInRequest {
        device_id: device.into(),
        board: "pi".into(),
        version: version.into(),
        channel: "stable".into(),
        labels: HashMap::from([("site".to_string(), "quay-3".to_string())]),
        slots: vec![
            pb::SlotState {
                name: "a".into(),
                version: version.into(),
                status: pb::SlotStatus::Good as i32,
                booted: true,
            },
            pb::SlotState {
                name: "b".into(),
                version: String::new(),
                status: pb::SlotStatus::Empty as i32,
                booted: false,
            },
        ],
        health: Some(pb::Health {
            state: pb::HealthState::Healthy as i32,
            failing_checks: vec![],
        }),
        reports,
    }
}

fn step(sequence: u64, target: &str, step: pb::UpgradeStep, reason: &str) -> pb::UpgradeReport {
    pb::UpgradeReport {
        sequence,
        target_version: target.into(),
        step: step as i32,
        reason: reason.into(),
        at: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_is_offered_the_rollout_reports_its_steps_and_they_are_kept() {
    let s = server().await;
    let mut c = client(&s).await;
    // No rollout yet.
    let r = c
        .check_in(request("dev-1", "1.0.0", vec![]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.offer, None);
    assert_eq!(r.hold.unwrap().reason, pb::HoldReason::UpToDate as i32);
    assert_eq!(r.poll_interval.unwrap().seconds, 300);

    store(&s)
        .create_rollout(&rollout_v2(HealthGate::default()))
        .unwrap();
    let r = c
        .check_in(request("dev-1", "1.0.0", vec![]))
        .await
        .unwrap()
        .into_inner();
    let offer = r.offer.unwrap();
    assert_eq!(
        (
            offer.board.as_str(),
            offer.version.as_str(),
            offer.rollout_id.as_str()
        ),
        ("pi", "2.0.0", "v2")
    );

    use pb::UpgradeStep as S;
    let steps = vec![
        step(1, "2.0.0", S::Downloading, ""),
        step(2, "2.0.0", S::Installed, ""),
        step(3, "2.0.0", S::Rebooting, ""),
    ];
    let r = c
        .check_in(request("dev-1", "1.0.0", steps.clone()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.acknowledged_sequence, 3);
    // The same reports again (the answer was lost) and the rest, now running 2.0.0.
    let mut more = steps;
    more.push(step(4, "2.0.0", S::Probation, ""));
    more.push(step(5, "2.0.0", S::Committed, ""));
    let r = c
        .check_in(request("dev-1", "2.0.0", more))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.acknowledged_sequence, 5);
    assert_eq!(r.hold.unwrap().reason, pb::HoldReason::UpToDate as i32);

    let db = store(&s);
    let kinds: Vec<String> = db
        .timeline("dev-1")
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(
        kinds,
        [
            "enrolled",
            "offered",
            "downloading",
            "installed",
            "rebooting",
            "running",
            "probation",
            "committed"
        ]
    );
    let device = db.device("dev-1").unwrap().unwrap();
    assert_eq!(device.version.to_string(), "2.0.0");
    assert_eq!(
        device.labels.get("site").map(String::as_str),
        Some("quay-3")
    );
    let stats = &db.rollouts().unwrap()[0].stats;
    assert_eq!((stats[0].started, stats[0].committed), (1, 1));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollback_pauses_the_rollout_with_its_reason_until_an_operator_acts() {
    let s = server().await;
    let mut c = client(&s).await;
    store(&s)
        .create_rollout(&rollout_v2(HealthGate {
            max_bad_permille: 200,
            min_sample: 1,
        }))
        .unwrap();
    for d in ["a", "b", "c"] {
        c.check_in(request(d, "1.0.0", vec![])).await.unwrap();
    }
    use pb::UpgradeStep as S;
    let bad = vec![
        step(1, "2.0.0", S::Downloading, ""),
        step(
            2,
            "2.0.0",
            S::RolledBack,
            "health check http failed in probation",
        ),
    ];
    c.check_in(request("a", "1.0.0", bad)).await.unwrap();
    let ok = vec![
        step(1, "2.0.0", S::Downloading, ""),
        step(2, "2.0.0", S::Committed, ""),
    ];
    c.check_in(request("b", "2.0.0", ok)).await.unwrap();
    // The check-in carrying a's rollback already paused it (1 of 1 started devices went
    // bad, over 20 %); b's later success does not resume it.
    let r = c
        .check_in(request("c", "1.0.0", vec![]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.offer, None);
    let hold = r.hold.unwrap();
    assert_eq!(hold.reason, pb::HoldReason::Paused as i32);
    assert_eq!(hold.rollout_id, "v2");
    assert!(
        hold.detail
            .contains("1 of 1 devices in wave 1 failed or rolled back"),
        "{}",
        hold.detail
    );
    let db = store(&s);
    let state = db.rollouts().unwrap()[0].rollout.state.clone();
    assert!(
        matches!(
            state,
            RolloutState::Paused {
                reason: PauseReason::Health {
                    wave: 0,
                    started: 1,
                    bad: 1,
                    ..
                },
                ..
            }
        ),
        "{state:?}"
    );

    // Resuming does not forget the reports: the gate is still crossed, so the next
    // check-in pauses it again. Aborting stops it for good.
    db.act_on_rollout("v2", &RolloutAction::Resume, UnixTime(T0))
        .unwrap();
    let r = c
        .check_in(request("c", "1.0.0", vec![]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.hold.unwrap().reason, pb::HoldReason::Paused as i32);
    db.act_on_rollout("v2", &RolloutAction::Abort, UnixTime(T0))
        .unwrap();
    let r = c
        .check_in(request("c", "1.0.0", vec![]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.hold.unwrap().reason, pb::HoldReason::Aborted as i32);
    let timeline = db.timeline("a").unwrap();
    let last = timeline.iter().find(|e| e.kind == "rolled_back").unwrap();
    assert_eq!(
        (last.version.as_str(), last.detail.as_str()),
        ("2.0.0", "health check http failed in probation")
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_that_rolled_back_is_not_offered_the_release_by_a_healthy_rollout() {
    let s = server().await;
    let mut c = client(&s).await;
    // A gate that never pauses, so only the rollback rule holds the device back.
    store(&s)
        .create_rollout(&rollout_v2(HealthGate {
            max_bad_permille: 1000,
            min_sample: 1,
        }))
        .unwrap();
    use pb::UpgradeStep as S;
    c.check_in(request(
        "a",
        "1.0.0",
        vec![step(1, "2.0.0", S::RolledBack, "boot failed")],
    ))
    .await
    .unwrap();
    let r = c
        .check_in(request("a", "1.0.0", vec![]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.offer, None);
    assert_eq!(r.hold.unwrap().reason, pb::HoldReason::RolledBack as i32);
    let r = c
        .check_in(request("b", "1.0.0", vec![]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.offer.unwrap().version, "2.0.0");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_timeline_is_bounded_per_device() {
    let s = server().await;
    let mut c = client(&s).await;
    let mut seq = 0;
    for _ in 0..5 {
        let reports = (0..64)
            .map(|_| {
                seq += 1;
                step(seq, "2.0.0", pb::UpgradeStep::Failed, "disk full")
            })
            .collect();
        let r = c
            .check_in(request("noisy", "1.0.0", reports))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(r.acknowledged_sequence, seq);
    }
    let timeline = store(&s).timeline("noisy").unwrap();
    assert_eq!(timeline.len(), TIMELINE_LIMIT);
    assert_eq!(timeline.last().unwrap().kind, "failed");
    assert_eq!(store(&s).timeline("other").unwrap().len(), 0);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_check_ins_are_refused_naming_the_field() {
    let s = server().await;
    let mut c = client(&s).await;
    let base = || request("dev-1", "1.0.0", vec![]);
    let mut cases: Vec<(pb::CheckInRequest, &str)> = Vec::new();
    let mut r = base();
    r.device_id = "d".repeat(129);
    cases.push((r, "device_id: is 129 bytes; at most 128"));
    let mut r = base();
    r.device_id = "../etc".into();
    cases.push((r, "device_id: may hold only"));
    let mut r = base();
    r.version = "one".into();
    cases.push((r, "version: \"one\" is not a semantic version"));
    let mut r = base();
    r.reports = vec![step(1, "2.0.0", pb::UpgradeStep::Downloading, "")];
    r.reports[0].step = 42;
    cases.push((r, "reports[0].step: unknown value 42"));
    let mut r = base();
    r.reports = vec![step(1, "2.0.0", pb::UpgradeStep::Unspecified, "")];
    cases.push((r, "reports[0].step: is unspecified"));
    let mut r = base();
    r.reports = vec![step(0, "2.0.0", pb::UpgradeStep::Downloading, "")];
    cases.push((r, "reports[0].sequence: starts at 1"));
    let mut r = base();
    r.slots[1].status = 9;
    cases.push((r, "slots[1].status: unknown value 9"));
    let mut r = base();
    r.health = None;
    cases.push((r, "health: is missing"));
    let mut r = base();
    r.health = Some(pb::Health {
        state: 0,
        failing_checks: vec![],
    });
    cases.push((r, "health.state: is unspecified"));
    let mut r = base();
    r.reports = (1..=65)
        .map(|i| step(i, "2.0.0", pb::UpgradeStep::Downloading, ""))
        .collect();
    cases.push((r, "reports: 65 reports; at most 64"));
    let mut r = base();
    r.reports = vec![step(1, "2.0.0", pb::UpgradeStep::Failed, &"x".repeat(1025))];
    cases.push((r, "reports[0].reason: is 1025 bytes; at most 1024"));
    let mut r = base();
    r.labels = (0..33)
        .map(|i| (format!("k{i}"), "v".to_string()))
        .collect();
    cases.push((r, "labels: 33 labels; at most 32"));
    let mut r = base();
    r.channel = String::new();
    cases.push((r, "channel: is empty"));
    for (req, expected) in cases {
        let status = c.check_in(req).await.unwrap_err();
        assert_eq!(
            status.code(),
            Code::InvalidArgument,
            "{expected}: {status:?}"
        );
        assert!(
            status.message().contains(expected),
            "{expected:?} not in {:?}",
            status.message()
        );
    }
    // Nothing of a refused check-in was stored.
    assert!(store(&s).device("dev-1").unwrap().is_none());

    // A request past the size limit is refused by the decoder before any field is read.
    let mut r = base();
    r.labels = HashMap::from([("big".to_string(), "x".repeat(300 * 1024))]);
    let status = c.check_in(r).await.unwrap_err();
    assert!(
        matches!(status.code(), Code::OutOfRange | Code::ResourceExhausted),
        "{status:?}"
    );
    // The server is still fine.
    assert!(c.check_in(base()).await.is_ok());
    s.stop().await;
}
