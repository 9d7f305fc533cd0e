//! The conformance suite for [`DdiStore`]: every implementation runs [`ddi_suite`]
//! (the SQLite one here). Targets found by their token's hash only, actions reused while
//! open and never reopened once finished, attributes replaced.

use std::collections::BTreeMap;

use semver::Version;
use skerry_fleet_store::{ActionState, DdiStore, DdiTarget, SqliteStore};
use skerry_rollout::UnixTime;

const T0: u64 = 1_800_000_000;

fn target(device: &str) -> DdiTarget {
    DdiTarget {
        device: device.into(),
        board: "pi".into(),
        channel: "stable".into(),
        version: Version::new(1, 0, 0),
    }
}

/// What every [`DdiStore`] must do.
pub fn ddi_suite(store: &impl DdiStore) {
    let now = UnixTime(T0);
    store
        .put_ddi_target(&target("dev1"), &[1; 32], now)
        .unwrap();
    store
        .put_ddi_target(&target("dev2"), &[2; 32], now)
        .unwrap();
    assert_eq!(
        store.ddi_target_by_token(&[1; 32]).unwrap(),
        Some(target("dev1"))
    );
    assert_eq!(store.ddi_target_by_token(&[3; 32]).unwrap(), None);
    // A new token replaces the old one; the running version is kept.
    let mut moved = target("dev1");
    moved.version = Version::new(2, 0, 0);
    store.update_ddi_target(&moved).unwrap();
    store
        .put_ddi_target(&target("dev1"), &[9; 32], now)
        .unwrap();
    assert_eq!(store.ddi_target_by_token(&[1; 32]).unwrap(), None);
    assert_eq!(
        store.ddi_target_by_token(&[9; 32]).unwrap(),
        Some(moved.clone())
    );
    assert!(store.update_ddi_target(&target("ghost")).is_err());

    let v2 = Version::new(2, 1, 0);
    let a = store.ddi_open_action("dev1", "r2", &v2, now).unwrap();
    assert_eq!(a.state, ActionState::Open);
    assert_eq!(store.ddi_open_action("dev1", "r2", &v2, now).unwrap(), a);
    assert_eq!(store.ddi_pending_action("dev1").unwrap(), Some(a.clone()));
    assert_eq!(
        store.ddi_action("dev2", a.id).unwrap(),
        None,
        "another target's action"
    );
    store
        .set_ddi_action_state("dev1", a.id, ActionState::Failed)
        .unwrap();
    assert_eq!(store.ddi_pending_action("dev1").unwrap(), None);
    assert_eq!(
        store.ddi_action("dev1", a.id).unwrap().unwrap().state,
        ActionState::Failed
    );
    let b = store.ddi_open_action("dev1", "r2", &v2, now).unwrap();
    assert_ne!(a.id, b.id, "a finished action is never reopened");

    assert_eq!(store.ddi_attributes("dev2").unwrap(), None);
    let attrs = BTreeMap::from([("board".to_string(), "pi".to_string())]);
    store.set_ddi_attributes("dev2", &attrs).unwrap();
    assert_eq!(store.ddi_attributes("dev2").unwrap(), Some(attrs));
    store.set_ddi_attributes("dev2", &BTreeMap::new()).unwrap();
    assert_eq!(store.ddi_attributes("dev2").unwrap(), Some(BTreeMap::new()));
    assert!(store.set_ddi_attributes("ghost", &BTreeMap::new()).is_err());
}

#[test]
fn sqlite_passes_the_ddi_suite() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("fleet.db")).unwrap();
    ddi_suite(&store);
}

#[path = "support/pg_cluster.rs"]
mod pg_cluster;

#[test]
fn postgres_passes_the_ddi_suite() {
    let cluster = pg_cluster::PgCluster::start();
    ddi_suite(&skerry_fleet_store::PgStore::open(&cluster.database()).unwrap());
}
