//! The storage conformance suite: what every [`FleetStore`] implementation must do,
//! the same test bodies against SQLite and against a throwaway PostgreSQL cluster.

#[path = "support/pg_cluster.rs"]
mod pg_cluster;

use std::collections::BTreeMap;

use semver::Version;
use skerry_fleet_store::*;
use skerry_rollout::*;

fn v(s: &str) -> Version {
    Version::parse(s).unwrap()
}

fn check_in(device: &str, version: &str, reports: Vec<UpgradeReport>) -> CheckIn {
    CheckIn {
        device: device.into(),
        board: "pi".into(),
        version: v(version),
        channel: "stable".into(),
        labels: BTreeMap::new(),
        slots: vec![SlotReport {
            name: "a".into(),
            version: Some(v(version)),
            status: SlotStatus::Good,
            booted: true,
        }],
        health: HealthReport {
            state: HealthState::Healthy,
            failing: vec![],
        },
        reports,
        admission: Admission::Open,
    }
}

fn report(sequence: u64, target: &str, step: StepKind) -> UpgradeReport {
    UpgradeReport {
        sequence,
        target: v(target),
        step,
        reason: String::new(),
        at: UnixTime(1000 + sequence),
    }
}

fn rollout(id: &str, version: &str) -> Rollout {
    Rollout {
        id: id.into(),
        release: Release {
            board: "pi".into(),
            version: v(version),
            channel: "stable".into(),
        },
        started_at: UnixTime(0),
        waves: WaveSchedule::all_at_once(),
        gate: HealthGate::default(),
        state: RolloutState::Active,
        force: false,
    }
}

const NOW: UnixTime = UnixTime(5000);

fn suite<S: FleetStore + LeaseStore>(make: impl Fn() -> S) {
    leases_go_to_one_holder_at_a_time(make());
    reports_count_once_and_are_acknowledged(make());
    timelines_are_bounded_but_rollbacks_are_kept(make());
    outcomes_are_counted_per_wave(make());
    rollout_transitions(make());
    pins_and_windows(make());
}

fn leases_go_to_one_holder_at_a_time(store: impl LeaseStore) {
    let len = std::time::Duration::from_secs(60);
    let a = store
        .take_lease(TIMESTAMP_LEASE, "a", UnixTime(100), len)
        .unwrap()
        .unwrap();
    assert_eq!(a.expires, UnixTime(160));
    // b waits while a's lease runs; a renews with the same generation.
    assert_eq!(
        store
            .take_lease(TIMESTAMP_LEASE, "b", UnixTime(159), len)
            .unwrap(),
        None
    );
    let renewed = store
        .take_lease(TIMESTAMP_LEASE, "a", UnixTime(150), len)
        .unwrap()
        .unwrap();
    assert_eq!(
        (renewed.generation, renewed.expires),
        (a.generation, UnixTime(210))
    );
    // Expired: b takes it, a new generation; now a waits.
    let b = store
        .take_lease(TIMESTAMP_LEASE, "b", UnixTime(210), len)
        .unwrap()
        .unwrap();
    assert_eq!(b.generation, a.generation + 1);
    assert_eq!(
        store
            .take_lease(TIMESTAMP_LEASE, "a", UnixTime(211), len)
            .unwrap(),
        None
    );
    // Released by its holder (only): free at once. Another lease name is apart.
    store.release_lease(TIMESTAMP_LEASE, "a").unwrap();
    assert_eq!(
        store
            .take_lease(TIMESTAMP_LEASE, "a", UnixTime(212), len)
            .unwrap(),
        None
    );
    assert!(store
        .take_lease("other", "a", UnixTime(212), len)
        .unwrap()
        .is_some());
    store.release_lease(TIMESTAMP_LEASE, "b").unwrap();
    let again = store
        .take_lease(TIMESTAMP_LEASE, "a", UnixTime(213), len)
        .unwrap()
        .unwrap();
    assert_eq!(again.generation, b.generation + 1);
}

fn reports_count_once_and_are_acknowledged(store: impl FleetStore) {
    store.create_rollout(&rollout("r2", "2.0.0")).unwrap();
    let first = check_in(
        "d1",
        "1.0.0",
        vec![
            report(1, "2.0.0", StepKind::Downloading),
            report(2, "2.0.0", StepKind::Installed),
        ],
    );
    assert_eq!(store.check_in(&first, NOW).unwrap().acknowledged, 2);
    // The answer was lost; the device resends both and one more.
    let again = check_in(
        "d1",
        "1.0.0",
        vec![
            report(1, "2.0.0", StepKind::Downloading),
            report(2, "2.0.0", StepKind::Installed),
            report(3, "2.0.0", StepKind::Rebooting),
        ],
    );
    assert_eq!(store.check_in(&again, NOW).unwrap().acknowledged, 3);
    let steps: Vec<String> = store
        .timeline("d1")
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(steps, ["enrolled", "downloading", "installed", "rebooting"]);
    let stats = &store.rollouts().unwrap()[0].stats;
    assert_eq!(
        stats[0],
        WaveStats {
            started: 1,
            ..WaveStats::default()
        }
    );
    // A new version shows in the timeline.
    store
        .check_in(
            &check_in("d1", "2.0.0", vec![report(4, "2.0.0", StepKind::Committed)]),
            NOW,
        )
        .unwrap();
    let last: Vec<String> = store
        .timeline("d1")
        .unwrap()
        .into_iter()
        .rev()
        .take(2)
        .map(|e| e.kind)
        .collect();
    assert_eq!(last, ["committed", "running"]);
    assert_eq!(store.device("d1").unwrap().unwrap().version, v("2.0.0"));
}

fn timelines_are_bounded_but_rollbacks_are_kept(store: impl FleetStore) {
    store
        .check_in(
            &check_in(
                "d1",
                "1.0.0",
                vec![report(1, "1.5.0", StepKind::RolledBack)],
            ),
            NOW,
        )
        .unwrap();
    for batch in 0..(TIMELINE_LIMIT as u64 / 16 + 2) {
        let reports = (0..16)
            .map(|i| report(2 + batch * 16 + i, "1.6.0", StepKind::Downloading))
            .collect();
        store
            .check_in(&check_in("d1", "1.0.0", reports), NOW)
            .unwrap();
    }
    let timeline = store.timeline("d1").unwrap();
    assert_eq!(timeline.len(), TIMELINE_LIMIT);
    assert!(
        timeline.iter().all(|e| e.kind != "rolled_back"),
        "the rollback entry was trimmed"
    );
    assert!(timeline.windows(2).all(|w| w[0].seq < w[1].seq));
    let facts = store
        .check_in(&check_in("d1", "1.0.0", vec![]), NOW)
        .unwrap()
        .facts;
    assert!(facts.rolled_back_from.contains(&v("1.5.0")), "{facts:?}");
}

fn outcomes_are_counted_per_wave(store: impl FleetStore) {
    let mut r = rollout("r2", "2.0.0");
    r.waves = WaveSchedule::new(vec![
        Wave {
            after_secs: 0,
            basis_points: 5000,
        },
        Wave {
            after_secs: 10,
            basis_points: BASIS_POINTS,
        },
    ])
    .unwrap();
    store.create_rollout(&r).unwrap();
    let mut expected = vec![WaveStats::default(); 2];
    for i in 0..12 {
        let id = format!("dev-{i}");
        let wave = r.waves.wave_of(WaveSeed::of(&id)).unwrap();
        store
            .check_in(&check_in(&id, "1.0.0", vec![]), NOW)
            .unwrap();
        store.record_offer("r2", &id, Some(wave), NOW).unwrap();
        store.record_offer("r2", &id, Some(wave), NOW).unwrap(); // a repeated offer is one
        let step = [
            StepKind::Committed,
            StepKind::Failed,
            StepKind::RolledBack,
            StepKind::Probation,
        ][i % 4];
        store
            .check_in(&check_in(&id, "1.0.0", vec![report(1, "2.0.0", step)]), NOW)
            .unwrap();
        let s = &mut expected[wave];
        s.started += 1;
        match step {
            StepKind::Committed => s.committed += 1,
            StepKind::Failed => s.failed += 1,
            StepKind::RolledBack => s.rolled_back += 1,
            _ => {}
        }
    }
    let got = store.rollouts_for("pi", "stable").unwrap();
    assert_eq!(got[0].stats, expected);
    assert!(store.rollouts_for("pi", "beta").unwrap().is_empty());
    let offered = store.timeline("dev-0").unwrap();
    assert_eq!(offered.iter().filter(|e| e.kind == "offered").count(), 1);
}

fn rollout_transitions(store: impl FleetStore) {
    store.create_rollout(&rollout("r2", "2.0.0")).unwrap();
    let dup = store.create_rollout(&rollout("r3", "2.0.0")).unwrap_err();
    assert!(matches!(dup, StoreError::RolloutExists { .. }), "{dup}");
    let reason = PauseReason::Health {
        wave: 0,
        started: 3,
        bad: 1,
        max_bad_permille: 200,
    };
    store.pause_if_active("r2", &reason, UnixTime(100)).unwrap();
    let state = |s: &dyn FleetStore| s.rollouts().unwrap()[0].rollout.state.clone();
    assert_eq!(
        state(&store),
        RolloutState::Paused {
            since: UnixTime(100),
            reason: reason.clone()
        }
    );
    // A second automatic pause keeps the first reason.
    store
        .pause_if_active(
            "r2",
            &PauseReason::Operator { note: "x".into() },
            UnixTime(200),
        )
        .unwrap();
    assert_eq!(
        state(&store),
        RolloutState::Paused {
            since: UnixTime(100),
            reason
        }
    );
    let err = store
        .act_on_rollout(
            "r2",
            &RolloutAction::Pause { note: "n".into() },
            UnixTime(300),
        )
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::BadTransition {
                state: "paused",
                ..
            }
        ),
        "{err}"
    );
    store
        .act_on_rollout("r2", &RolloutAction::Resume, UnixTime(400))
        .unwrap();
    let r = store.rollouts().unwrap()[0].rollout.clone();
    assert_eq!(
        (r.state, r.started_at),
        (RolloutState::Active, UnixTime(300))
    );
    store
        .act_on_rollout(
            "r2",
            &RolloutAction::Pause {
                note: "look".into(),
            },
            UnixTime(500),
        )
        .unwrap();
    assert!(matches!(
        state(&store),
        RolloutState::Paused {
            reason: PauseReason::Operator { .. },
            ..
        }
    ));
    store
        .act_on_rollout("r2", &RolloutAction::Abort, UnixTime(600))
        .unwrap();
    assert_eq!(state(&store), RolloutState::Aborted);
    assert!(matches!(
        store.act_on_rollout("r2", &RolloutAction::Resume, NOW),
        Err(StoreError::BadTransition { .. })
    ));
    assert!(matches!(
        store.act_on_rollout("nope", &RolloutAction::Abort, NOW),
        Err(StoreError::NoSuchRollout { .. })
    ));
}

fn pins_and_windows(store: impl FleetStore) {
    assert!(matches!(
        store.set_pin("ghost", None),
        Err(StoreError::NoSuchDevice { .. })
    ));
    store
        .check_in(&check_in("d1", "1.0.0", vec![]), NOW)
        .unwrap();
    let pin = Pin {
        version: v("1.2.0"),
        force: true,
    };
    store.set_pin("d1", Some(&pin)).unwrap();
    assert_eq!(
        store
            .check_in(&check_in("d1", "1.0.0", vec![]), NOW)
            .unwrap()
            .facts
            .pin,
        Some(pin)
    );
    store.set_pin("d1", None).unwrap();
    assert_eq!(store.device("d1").unwrap().unwrap().pin, None);
    let group = [("site".to_string(), "mine".to_string())]
        .into_iter()
        .collect();
    let w = MaintenanceWindow::new(group, Weekdays::from_bits(0b11).unwrap(), 60, 90).unwrap();
    store.add_window(&w).unwrap();
    assert_eq!(store.windows().unwrap(), vec![w]);
}

#[test]
fn sqlite_store_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let counter = std::sync::atomic::AtomicU32::new(0);
    suite(|| {
        let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        SqliteStore::open(&dir.path().join(format!("fleet-{n}.db"))).unwrap()
    });
}

#[test]
fn postgres_store_conforms() {
    let cluster = pg_cluster::PgCluster::start();
    suite(|| PgStore::open(&cluster.database()).unwrap());
}
