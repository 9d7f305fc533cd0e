//! What a root rotation makes the client forget (TUF 1.0 §5.3.11, fast-forward recovery).

use std::collections::BTreeMap;

use skerry_tuf::canonical::to_canonical_of;
use skerry_tuf::{
    Expiry, KeyId, PublicKey, RememberedVersions, RoleKeys, Root, SecretKey, Signature, Signed,
    TrustedRoot, SPEC_VERSION,
};

fn root(version: u64, keys: BTreeMap<KeyId, PublicKey>, roles: [(&str, RoleKeys); 4]) -> Root {
    Root {
        kind: "root".into(),
        spec_version: SPEC_VERSION.into(),
        version,
        expires: Expiry::parse("2100-01-01T00:00:00Z").unwrap(),
        consistent_snapshot: true,
        keys,
        roles: roles.map(|(r, k)| (r.to_string(), k)).into(),
    }
}

fn role(ids: &[&KeyId], threshold: u32) -> RoleKeys {
    RoleKeys {
        keyids: ids.iter().map(|id| id.to_string()).collect(),
        threshold,
    }
}

/// Signs `root` once per `(keyid, key)` pair, under whatever key id the pair names.
fn sign_as(root: &Root, signers: &[(&KeyId, &SecretKey)]) -> Vec<u8> {
    let message = to_canonical_of(root).unwrap();
    let signatures = signers
        .iter()
        .map(|(id, key)| Signature {
            keyid: id.to_string(),
            sig: key.sign(&message),
        })
        .collect();
    Signed {
        signatures,
        signed: root.clone(),
    }
    .to_bytes()
    .unwrap()
}

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
    let mut remembered = RememberedVersions {
        timestamp: 900,
        snapshot: 800,
        targets: 700,
    };
    trusted.rotate(&v2, &mut remembered).unwrap();
    assert_eq!(trusted.version(), 2);
    // TUF 1.0 §5.3.11: timestamp *and* snapshot are forgotten when either key rotates.
    assert_eq!(
        remembered,
        RememberedVersions {
            timestamp: 0,
            snapshot: 0,
            targets: 700,
        }
    );
}
