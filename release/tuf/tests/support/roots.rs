//! Root metadata for the attack tests: built field by field and signed under whatever
//! key ids a test names, so a test can forge what a real repository never would.

use std::collections::BTreeMap;

use skerry_tuf::canonical::to_canonical_of;
use skerry_tuf::{
    Expiry, KeyId, PublicKey, RoleKeys, Root, SecretKey, Signature, Signed, SPEC_VERSION,
};

pub fn root(version: u64, keys: BTreeMap<KeyId, PublicKey>, roles: [(&str, RoleKeys); 4]) -> Root {
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

pub fn role(ids: &[&KeyId], threshold: u32) -> RoleKeys {
    RoleKeys {
        keyids: ids.iter().map(|id| id.to_string()).collect(),
        threshold,
    }
}

/// Signs `root` once per `(keyid, key)` pair, under whatever key id the pair names.
pub fn sign_as(root: &Root, signers: &[(&KeyId, &SecretKey)]) -> Vec<u8> {
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
