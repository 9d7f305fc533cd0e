//! SQLite's group commit under concurrency: many threads checking in at once, each
//! answer acknowledging exactly its own reports, every report stored once.

use std::collections::BTreeMap;
use std::sync::Arc;

use semver::Version;
use skerry_fleet_store::*;
use skerry_rollout::UnixTime;

const THREADS: usize = 16;
const CHECK_INS: u64 = 40;

fn check_in(device: &str, sequence: u64) -> CheckIn {
    let version = Version::new(1, 0, 0);
    CheckIn {
        device: device.into(),
        board: "pi".into(),
        version: version.clone(),
        channel: "stable".into(),
        labels: BTreeMap::new(),
        slots: vec![SlotReport {
            name: "a".into(),
            version: Some(version),
            status: SlotStatus::Good,
            booted: true,
        }],
        health: HealthReport {
            state: HealthState::Healthy,
            failing: vec![],
        },
        reports: vec![UpgradeReport {
            sequence,
            target: Version::new(2, 0, 0),
            step: StepKind::Downloading,
            reason: format!("report {sequence} of {device}"),
            at: UnixTime(1000 + sequence),
        }],
        admission: Admission::Open,
    }
}

#[test]
fn concurrent_check_ins_are_each_acknowledged_and_stored_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("fleet.db")).unwrap());
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let store = Arc::clone(&store);
            std::thread::spawn(move || {
                let device = format!("dev-{t}");
                for sequence in 1..=CHECK_INS {
                    let record = store
                        .check_in(&check_in(&device, sequence), UnixTime(2000))
                        .unwrap();
                    // Its own report, not a neighbour's, and not a stale count.
                    assert_eq!(record.acknowledged, sequence, "{device}");
                    assert_eq!(record.facts.id, device);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    // Read back from a fresh connection: what was answered is durable, once each.
    let reopened = SqliteStore::open(&dir.path().join("fleet.db")).unwrap();
    for t in 0..THREADS {
        let device = format!("dev-{t}");
        let record = reopened.device(&device).unwrap().unwrap();
        assert_eq!(record.acknowledged, CHECK_INS, "{device}");
        let reports: Vec<String> = reopened
            .timeline(&device)
            .unwrap()
            .into_iter()
            .filter(|e| e.kind == StepKind::Downloading.name())
            .map(|e| e.detail)
            .collect();
        let wanted: Vec<String> = (1..=CHECK_INS)
            .map(|s| format!("report {s} of {device}"))
            .collect();
        assert_eq!(reports, wanted, "{device}");
    }
}

/// The decision's inputs come with the record, read after the group's commit: the
/// rollout's stats already count the report this check-in carried.
#[test]
fn decision_inputs_count_the_check_ins_own_report() {
    use skerry_rollout::*;
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("fleet.db")).unwrap();
    store
        .create_rollout(&Rollout {
            id: "r2".into(),
            release: Release {
                board: "pi".into(),
                version: Version::new(2, 0, 0),
                channel: "stable".into(),
            },
            started_at: UnixTime(0),
            waves: WaveSchedule::all_at_once(),
            gate: HealthGate::default(),
            state: RolloutState::Active,
            force: false,
        })
        .unwrap();
    let mut failing = check_in("dev-f", 1);
    failing.reports[0].step = StepKind::Failed;
    let record = store.check_in(&failing, UnixTime(2000)).unwrap();
    let inputs = record.inputs.expect("the embedded store reads the inputs");
    let [r2] = inputs.rollouts.as_slice() else {
        panic!("one rollout of pi/stable: {:?}", inputs.rollouts)
    };
    assert_eq!(r2.rollout.id, "r2");
    let failed: u32 = r2.stats.iter().map(|w| w.failed).sum();
    assert_eq!(failed, 1, "the stats count this check-in's failure");
    assert_eq!(inputs.windows, vec![]);
}
