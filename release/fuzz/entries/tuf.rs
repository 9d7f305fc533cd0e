//! Fuzz entry points for TUF metadata, shared by the fuzz targets and the corpus replay
//! test (`release/tuf/tests/fuzz_corpus.rs`) so both run exactly the same code.
//!
//! Hostile bytes must give an error, never a panic, and must never be accepted by a
//! check they cannot pass (a signature by our fixed keys, a pinned sha256).

use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use skerry_tuf::metadata::Unverified;
use skerry_tuf::{
    Expiry, MetaFile, RememberedVersions, Role, RoleKeys, Root, SecretKey, Signed, Snapshot,
    Targets, Timestamp, TrustedRoot, TufError, Verified, SPEC_VERSION,
};

/// What an input was accepted as.
#[derive(Debug)]
pub enum Accepted {
    Root,
    Timestamp,
}

/// The fixed repository inputs are checked against: one key signs every role.
struct Fixture {
    root: TrustedRoot,
    timestamp: Verified<Timestamp>,
    now: SystemTime,
}

fn key() -> SecretKey {
    SecretKey::from_seed([0x5a; 32])
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let key = key();
        let id = key.key_id().expect("fixed key has an id");
        let role = RoleKeys {
            keyids: vec![id.clone()],
            threshold: 1,
        };
        let expires = Expiry::parse("2100-01-01T00:00:00Z").expect("fixed expiry parses");
        let root = Root {
            kind: "root".into(),
            spec_version: SPEC_VERSION.into(),
            version: 1,
            expires,
            consistent_snapshot: true,
            keys: [(id, key.public())].into(),
            roles: Role::ALL
                .map(|r| (r.name().to_string(), role.clone()))
                .into(),
        };
        let bytes = sign(root);
        let root = TrustedRoot::from_bytes(&bytes).expect("fixed root verifies");
        let ts = Timestamp {
            kind: "timestamp".into(),
            spec_version: SPEC_VERSION.into(),
            version: 1,
            expires,
            meta: [(
                "snapshot.json".to_string(),
                MetaFile {
                    version: 1,
                    length: Some(2),
                    hashes: Some([("sha256".to_string(), "00".repeat(32))].into()),
                },
            )]
            .into(),
        };
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let timestamp = root
            .verify_timestamp(&sign(ts), &RememberedVersions::default(), now)
            .expect("fixed timestamp verifies");
        Fixture {
            root,
            timestamp,
            now,
        }
    })
}

fn sign<T: serde::Serialize>(value: T) -> Vec<u8> {
    Signed::sign(value, &[&key()])
        .and_then(|s| s.to_bytes())
        .expect("fixed metadata signs")
}

/// Parses and verifies `data` as every kind of metadata a device receives. Returns what
/// it was accepted as, or the first kind's refusal when nothing accepted it.
pub fn metadata(data: &[u8]) -> Result<Accepted, TufError> {
    let fx = fixture();
    let now = fx.now;
    let seen = RememberedVersions::default();
    let trusted = TrustedRoot::from_bytes(data);
    let mut root = fx.root.clone();
    let mut remembered = seen.clone();
    let rotated = root.rotate(data, &mut remembered);
    let timestamp = fx.root.verify_timestamp(data, &seen, now);
    // The fixed timestamp pins a snapshot of 2 bytes with an all-zero sha256: nothing
    // may pass it, so this exercises the pin check on every input.
    let snapshot = fx.root.verify_snapshot(data, &fx.timestamp, &seen, now);
    assert!(snapshot.is_err(), "a snapshot passed an impossible pin");
    // The parsers behind the signature check, reached directly.
    if let Ok(raw) = Unverified::parse("fuzz input", data) {
        let _ = raw.decode::<Root>();
        let _ = raw.decode::<Timestamp>();
        let _ = raw.decode::<Snapshot>();
        let _ = raw.decode::<Targets>();
        let _ = raw.verify_role("targets", root_keys(&fx.root), &fx.root.root().keys);
    }
    if rotated.is_ok() {
        return Ok(Accepted::Root);
    }
    match (trusted, timestamp) {
        (Ok(_), _) => Ok(Accepted::Root),
        (_, Ok(_)) => Ok(Accepted::Timestamp),
        (Err(e), _) => Err(e),
    }
}

fn root_keys(root: &TrustedRoot) -> &RoleKeys {
    root.root()
        .roles
        .get("targets")
        .expect("fixed root has a targets role")
}

/// Seed inputs, named by the outcome the replay expects (`accept-` or `reject-`).
pub fn seeds() -> Vec<(String, Vec<u8>)> {
    let fx = fixture();
    let other = SecretKey::from_seed([0x33; 32]);
    let mut root = fx.root.root().clone();
    let self_signed = sign(root.clone());
    root.version = 2;
    let rotation = sign(root.clone());
    let mut forged = root.clone();
    forged.version = 3;
    let by_other = Signed::sign(forged, &[&other])
        .and_then(|s| s.to_bytes())
        .expect("signs");
    let timestamp = sign((*fx.timestamp).clone());
    let mut expired = (*fx.timestamp).clone();
    expired.expires = Expiry::parse("2001-01-01T00:00:00Z").expect("parses");
    let mut unpinned = (*fx.timestamp).clone();
    if let Some(m) = unpinned.meta.get_mut("snapshot.json") {
        m.hashes = None;
    }
    let mut tampered = timestamp.clone();
    if let Some(b) = tampered.iter_mut().rev().find(|b| b.is_ascii_digit()) {
        *b = if *b == b'9' { b'0' } else { *b + 1 };
    }
    vec![
        ("accept-root-self-signed.json".into(), self_signed),
        ("accept-root-rotation-v2.json".into(), rotation),
        ("accept-timestamp.json".into(), timestamp),
        ("reject-root-signed-by-another-key.json".into(), by_other),
        ("reject-timestamp-expired.json".into(), sign(expired)),
        (
            "reject-timestamp-unpinned-snapshot.json".into(),
            sign(unpinned),
        ),
        ("reject-timestamp-tampered.json".into(), tampered),
        ("reject-empty".into(), Vec::new()),
        ("reject-not-json".into(), b"\x00\xffSKRYIDX1".to_vec()),
        (
            "reject-deep-nesting.json".into(),
            [vec![b'['; 4096], vec![b']'; 4096]].concat(),
        ),
    ]
}
