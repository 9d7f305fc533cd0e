//! Attacks on threshold counting: one key counted twice (two key ids, two spellings of
//! its hex), and key ids that do not name their key.

use std::collections::BTreeMap;

use skerry_tuf::key::KeyVal;
use skerry_tuf::{KeyId, PublicKey, RoleKeys, Root, SecretKey, TrustedRoot, TufError};

mod support {
    pub mod roots;
}
use support::roots::{role, root, sign_as};

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
    let r = root_with_one_role_for_all(1, keys, both);
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
    let r = root_with_one_role_for_all(1, keys, both);
    let bytes = sign_as(&r, &[(&lower_id, &key), (&upper_id, &key)]);
    assert_threshold_refused(TrustedRoot::from_bytes(&bytes));
}

#[test]
fn a_keyid_that_is_not_the_hash_of_its_key_is_not_trusted() {
    let key = SecretKey::from_seed([3; 32]);
    let fake: KeyId = "cd".repeat(32);
    let keys = [(fake.clone(), key.public())].into();
    let only = role(&[&fake], 1);
    let r = root_with_one_role_for_all(1, keys, only);
    let bytes = sign_as(&r, &[(&fake, &key)]);
    match TrustedRoot::from_bytes(&bytes) {
        Err(TufError::Threshold { valid: 0, .. }) => {}
        other => panic!(
            "expected no valid signature, got {:?}",
            other.map(|r| r.version())
        ),
    }
}

/// A root in which one set of keys holds all four roles.
pub fn root_with_one_role_for_all(
    version: u64,
    keys: BTreeMap<KeyId, PublicKey>,
    all: RoleKeys,
) -> Root {
    root(
        version,
        keys,
        [
            ("root", all.clone()),
            ("targets", all.clone()),
            ("snapshot", all.clone()),
            ("timestamp", all),
        ],
    )
}
