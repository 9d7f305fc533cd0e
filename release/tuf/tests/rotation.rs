//! What a root rotation makes the client forget (TUF 1.0 §5.3.11, fast-forward recovery).

use skerry_tuf::{RememberedVersions, SecretKey, TrustedRoot};

mod support {
    pub mod roots;
}
use support::roots::{role, root, sign_as};

#[test]
fn rotating_only_the_snapshot_key_forgets_timestamp_and_snapshot_versions() {
    let root_key = SecretKey::from_seed([4; 32]);
    let old_snap = SecretKey::from_seed([5; 32]);
    let new_snap = SecretKey::from_seed([6; 32]);
    let other = SecretKey::from_seed([7; 32]);
    let ids = |k: &SecretKey| k.key_id().unwrap();
    let make = |version: u64, snap: &SecretKey| {
        let keys = [&root_key, snap, &other]
            .map(|k| (ids(k), k.public()))
            .into();
        root(
            version,
            keys,
            [
                ("root", role(&[&ids(&root_key)], 1)),
                ("targets", role(&[&ids(&other)], 1)),
                ("snapshot", role(&[&ids(snap)], 1)),
                ("timestamp", role(&[&ids(&other)], 1)),
            ],
        )
    };
    let v1 = sign_as(&make(1, &old_snap), &[(&ids(&root_key), &root_key)]);
    let v2 = sign_as(&make(2, &new_snap), &[(&ids(&root_key), &root_key)]);
    let mut trusted = TrustedRoot::from_bytes(&v1).unwrap();
    let mut remembered = remembered(900, 800, 700);
    trusted.rotate(&v2, &mut remembered).unwrap();
    assert_eq!(trusted.version(), 2);
    // TUF 1.0 §5.3.11: timestamp *and* snapshot are forgotten when either key rotates.
    assert_eq!(remembered, self::remembered(0, 0, 700));
}

/// Versions as a device state file holds them (only the chain moves them in code).
fn remembered(timestamp: u64, snapshot: u64, targets: u64) -> RememberedVersions {
    serde_json::from_value(serde_json::json!({
        "timestamp": timestamp, "snapshot": snapshot, "targets": targets
    }))
    .unwrap()
}
