//! The chain pins each file by its parent's length and sha256, and its results are joined
//! only when they chain: parts of two refreshes cannot be mixed into one release.

use std::collections::BTreeMap;
use std::time::SystemTime;

use sha2::{Digest, Sha256};
use skerry_tuf::{
    Expiry, MetaFile, RememberedVersions, SecretKey, Signed, Snapshot, Targets, Timestamp,
    TrustedRoot, TufError, SPEC_VERSION,
};

mod support {
    pub mod roots;
}
use support::roots::{role, root, sign_as};

fn expires() -> Expiry {
    Expiry::parse("2100-01-01T00:00:00Z").unwrap()
}

fn sign<T: serde::Serialize>(value: T, key: &SecretKey) -> Vec<u8> {
    Signed::sign(value, &[key]).unwrap().to_bytes().unwrap()
}

fn pin(version: u64, bytes: &[u8]) -> MetaFile {
    MetaFile {
        version,
        length: Some(bytes.len() as u64),
        hashes: Some([("sha256".to_string(), hex::encode(Sha256::digest(bytes)))].into()),
    }
}

fn targets(version: u64, key: &SecretKey) -> Vec<u8> {
    sign(
        Targets {
            kind: "targets".into(),
            spec_version: SPEC_VERSION.into(),
            version,
            expires: expires(),
            targets: BTreeMap::new(),
        },
        key,
    )
}

fn snapshot(version: u64, targets: MetaFile, key: &SecretKey) -> Vec<u8> {
    sign(
        Snapshot {
            kind: "snapshot".into(),
            spec_version: SPEC_VERSION.into(),
            version,
            expires: expires(),
            meta: [("targets.json".to_string(), targets)].into(),
        },
        key,
    )
}

fn timestamp(version: u64, snapshot: MetaFile, key: &SecretKey) -> Vec<u8> {
    sign(
        Timestamp {
            kind: "timestamp".into(),
            spec_version: SPEC_VERSION.into(),
            version,
            expires: expires(),
            meta: [("snapshot.json".to_string(), snapshot)].into(),
        },
        key,
    )
}

fn trusted(key: &SecretKey) -> TrustedRoot {
    let id = key.key_id().unwrap();
    let r = root(
        1,
        [(id.clone(), key.public())].into(),
        ["root", "targets", "snapshot", "timestamp"].map(|n| (n, role(&[&id], 1))),
    );
    TrustedRoot::from_bytes(&sign_as(&r, &[(&id, key)])).unwrap()
}

#[test]
fn a_pinned_chain_verifies_and_is_remembered() {
    let key = SecretKey::from_seed([8; 32]);
    let root = trusted(&key);
    let now = SystemTime::now();
    let t = targets(4, &key);
    let s = snapshot(3, pin(4, &t), &key);
    let ts = timestamp(2, pin(3, &s), &key);
    let mut seen = RememberedVersions::default();
    let ts = root.verify_timestamp(&ts, &seen, now).unwrap();
    let s = root.verify_snapshot(&s, &ts, &seen, now).unwrap();
    let t = root.verify_targets(&t, &s, now).unwrap();
    let release = root.release(ts, s, t).unwrap();
    seen.record(&release);
    assert_eq!(
        (seen.timestamp(), seen.snapshot(), seen.targets()),
        (2, 3, 4)
    );
}

#[test]
fn targets_listed_by_version_alone_are_refused() {
    let key = SecretKey::from_seed([8; 32]);
    let root = trusted(&key);
    let now = SystemTime::now();
    let unpinned = MetaFile {
        version: 4,
        length: None,
        hashes: None,
    };
    let s = snapshot(3, unpinned, &key);
    let ts = timestamp(2, pin(3, &s), &key);
    let seen = RememberedVersions::default();
    let ts = root.verify_timestamp(&ts, &seen, now).unwrap();
    let err = root.verify_snapshot(&s, &ts, &seen, now).unwrap_err();
    assert!(
        matches!(&err, TufError::Unpinned { role, file } if role == "snapshot" && file == "targets.json"),
        "{err}"
    );
}

#[test]
fn a_snapshot_listed_by_version_alone_is_refused() {
    let key = SecretKey::from_seed([8; 32]);
    let root = trusted(&key);
    let unpinned = MetaFile {
        version: 3,
        length: Some(10),
        hashes: None,
    };
    let ts = timestamp(2, unpinned, &key);
    let err = root
        .verify_timestamp(&ts, &RememberedVersions::default(), SystemTime::now())
        .unwrap_err();
    assert!(matches!(err, TufError::Unpinned { .. }), "{err}");
}

#[test]
fn parts_of_two_refreshes_cannot_be_joined() {
    let key = SecretKey::from_seed([8; 32]);
    let root = trusted(&key);
    let now = SystemTime::now();
    let seen = RememberedVersions::default();
    let chain = |expires_day: u64| {
        // Two different targets files of the same version, each in its own chain.
        let mut t: Signed<Targets> = serde_json::from_slice(&targets(4, &key)).unwrap();
        t.signed.expires = Expiry(t.signed.expires.0 + std::time::Duration::from_secs(expires_day));
        let t = sign(t.signed, &key);
        let s = snapshot(3, pin(4, &t), &key);
        let ts = timestamp(2, pin(3, &s), &key);
        let ts = root.verify_timestamp(&ts, &seen, now).unwrap();
        let s = root.verify_snapshot(&s, &ts, &seen, now).unwrap();
        let t = root.verify_targets(&t, &s, now).unwrap();
        (ts, s, t)
    };
    let (ts_a, s_a, _) = chain(0);
    let (_, s_b, t_b) = chain(86_400);
    // Targets of chain B fail chain A's snapshot pin, at verification and at joining.
    let t_b_bytes_refused = root.verify_targets(&targets(4, &key), &s_b, now);
    assert!(t_b_bytes_refused.is_err());
    let err = root.release(ts_a, s_a, t_b).unwrap_err();
    assert!(matches!(err, TufError::HashMismatch { .. }), "{err}");
}
