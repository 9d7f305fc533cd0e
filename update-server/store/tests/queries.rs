//! The operator queries ([`FleetQueries`]): device pages by id with a cursor and a cap,
//! fleet overview counts. The suite takes any store; SQLite runs it here.

use std::collections::BTreeMap;

use semver::Version;
use skerry_fleet_store::*;
use skerry_rollout::{Pin, UnixTime};

fn check_in(device: &str, version: &str, health: HealthState, failing: &[&str]) -> CheckIn {
    CheckIn {
        device: device.into(),
        board: "pi".into(),
        version: Version::parse(version).unwrap(),
        channel: "stable".into(),
        labels: BTreeMap::new(),
        slots: vec![],
        health: HealthReport {
            state: health,
            failing: failing.iter().map(|s| s.to_string()).collect(),
        },
        reports: vec![],
        admission: Admission::Open,
    }
}

fn seed<S: FleetStore + FleetQueries>(store: &S) {
    for (i, (version, health, failing)) in [
        ("1.0.0", HealthState::Healthy, &[][..]),
        ("1.0.0", HealthState::Degraded, &["disk"][..]),
        ("1.1.0", HealthState::Degraded, &["net"][..]),
        ("1.0.0", HealthState::Unhealthy, &["app", "net"][..]),
        ("1.0.0", HealthState::Healthy, &[][..]),
    ]
    .into_iter()
    .enumerate()
    {
        store
            .check_in(
                &check_in(&format!("dev-{i}"), version, health, failing),
                UnixTime(100 + i as u64),
            )
            .unwrap();
    }
}

fn queries_suite<S: FleetStore + FleetQueries>(store: S) {
    seed(&store);
    store
        .set_pin(
            "dev-3",
            Some(&Pin {
                version: Version::parse("1.1.0").unwrap(),
                force: false,
            }),
        )
        .unwrap();

    let first = store.device_page(None, 2).unwrap();
    let ids: Vec<_> = first.devices.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(ids, ["dev-0", "dev-1"]);
    assert_eq!(first.next_after.as_deref(), Some("dev-1"));
    assert_eq!(first.devices[1].health, "degraded: disk");
    assert_eq!(first.devices[1].last_seen, UnixTime(101));

    let second = store.device_page(first.next_after.as_deref(), 2).unwrap();
    let ids: Vec<_> = second.devices.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(ids, ["dev-2", "dev-3"]);
    assert_eq!(second.devices[1].pin.as_deref(), Some("1.1.0"));
    let last = store.device_page(second.next_after.as_deref(), 2).unwrap();
    assert_eq!(last.devices.len(), 1);
    assert_eq!(last.next_after, None, "the last page says so");

    // A limit of 0 still returns a device; a huge one is capped.
    assert_eq!(store.device_page(None, 0).unwrap().devices.len(), 1);
    assert_eq!(
        store.device_page(None, usize::MAX).unwrap().devices.len(),
        5
    );

    let o = store.overview().unwrap();
    assert_eq!(o.devices, 5);
    assert_eq!(o.versions, vec![("1.0.0".into(), 4), ("1.1.0".into(), 1)]);
    assert_eq!(
        o.health,
        vec![
            ("degraded".into(), 2),
            ("healthy".into(), 2),
            ("unhealthy".into(), 1)
        ]
    );
}

#[test]
fn sqlite_answers_the_operator_queries() {
    let dir = tempfile::tempdir().unwrap();
    queries_suite(SqliteStore::open(&dir.path().join("fleet.db")).unwrap());
}

#[test]
fn an_empty_fleet_has_no_pages_and_zero_counts() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("fleet.db")).unwrap();
    let page = store.device_page(None, 10).unwrap();
    assert!(page.devices.is_empty() && page.next_after.is_none());
    assert_eq!(store.overview().unwrap(), FleetOverview::default());
}

#[path = "support/pg_cluster.rs"]
mod pg_cluster;

#[test]
fn postgres_answers_the_operator_queries() {
    let cluster = pg_cluster::PgCluster::start();
    queries_suite(skerry_fleet_store::PgStore::open(&cluster.database()).unwrap());
    let empty = skerry_fleet_store::PgStore::open(&cluster.database()).unwrap();
    let page = empty.device_page(None, 10).unwrap();
    assert!(page.devices.is_empty() && page.next_after.is_none());
    assert_eq!(empty.overview().unwrap(), FleetOverview::default());
}
