//! Attacks on threshold counting: one key counted twice (two key ids, two spellings of
//! its hex), and key ids that do not name their key.

use std::collections::BTreeMap;

use skerry_tuf::canonical::to_canonical_of;
use skerry_tuf::key::KeyVal;
use skerry_tuf::{
    Expiry, KeyId, PublicKey, RoleKeys, Root, SecretKey, Signature, Signed, TrustedRoot, TufError,
    SPEC_VERSION,
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

fn assert_threshold_refused(result: Result<TrustedRoot, TufError>) {
    match result {
        Err(TufError::Threshold {
            valid: 1,
            threshold: 2,
            ..
        }) => {}
        other => panic!(
            "expected 1 of 2 valid signatures, got {:?}",
            other.map(|r| r.version())
        ),
    }
}

#[test]
fn one_key_listed_under_a_second_made_up_keyid_counts_once() {
    let key = SecretKey::from_seed([1; 32]);
    let real = key.key_id().unwrap();
    let alias: KeyId = "ab".repeat(32);
    let keys = [(real.clone(), key.public()), (alias.clone(), key.public())].into();
    let both = role(&[&real, &alias], 2);
    let r = root(
        1,
        keys,
        [
            ("root", both.clone()),
            ("targets", both.clone()),
            ("snapshot", both.clone()),
            ("timestamp", both),
        ],
    );
    let bytes = sign_as(&r, &[(&real, &key), (&alias, &key)]);
    assert_threshold_refused(TrustedRoot::from_bytes(&bytes));
}

#[test]
fn one_key_written_in_upper_and_lower_case_hex_counts_once() {
    let key = SecretKey::from_seed([2; 32]);
    let lower = key.public();
    let upper = PublicKey {
        keyval: KeyVal {
            public: lower.keyval.public.to_ascii_uppercase(),
        },
        ..lower.clone()
    };
    // Both key ids are honest (the canonical hash of what they name), yet one key.
    let (lower_id, upper_id) = (lower.key_id().unwrap(), upper.key_id().unwrap());
    assert_ne!(lower_id, upper_id);
    let keys = [(lower_id.clone(), lower), (upper_id.clone(), upper)].into();
    let both = role(&[&lower_id, &upper_id], 2);
    let r = root(
        1,
        keys,
        [
            ("root", both.clone()),
            ("targets", both.clone()),
            ("snapshot", both.clone()),
            ("timestamp", both),
        ],
    );
    let bytes = sign_as(&r, &[(&lower_id, &key), (&upper_id, &key)]);
    assert_threshold_refused(TrustedRoot::from_bytes(&bytes));
}

#[test]
fn a_keyid_that_is_not_the_hash_of_its_key_is_not_trusted() {
    let key = SecretKey::from_seed([3; 32]);
    let fake: KeyId = "cd".repeat(32);
    let keys = [(fake.clone(), key.public())].into();
    let only = role(&[&fake], 1);
    let r = root(
        1,
        keys,
        [
            ("root", only.clone()),
            ("targets", only.clone()),
            ("snapshot", only.clone()),
            ("timestamp", only),
        ],
    );
    let bytes = sign_as(&r, &[(&fake, &key)]);
    match TrustedRoot::from_bytes(&bytes) {
        Err(TufError::Threshold { valid: 0, .. }) => {}
        other => panic!(
            "expected no valid signature, got {:?}",
            other.map(|r| r.version())
        ),
    }
}
