//! The client's verification chain (TUF 1.0 §5): update root step by step, then
//! timestamp → snapshot → targets, each signed by its role's threshold, not expired
//! against a time that never moves backwards, and never older than what was seen before.
//!
//! Pure: the caller fetches bytes and persists [`RememberedVersions`]; nothing here does
//! I/O or reads the clock.

use std::time::SystemTime;

use sha2::{Digest, Sha256};

use crate::error::TufError;
use crate::expiry::format_time;
use crate::metadata::{Metadata, Role, Root, Snapshot, Targets, Timestamp, Unverified};
use crate::verified::{limits, PinnedMeta, RememberedVersions, Verified, VerifiedRelease};

/// The root the device trusts now.
#[derive(Debug, Clone)]
pub struct TrustedRoot {
    root: Root,
    bytes: Vec<u8>,
}

impl TrustedRoot {
    /// Trusts `bytes` as root (it came from the factory or local storage) after checking it
    /// is root metadata signed by its own threshold.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, TufError> {
        let raw = Unverified::parse("trusted root metadata", bytes)?;
        let root: Root = raw.decode()?;
        raw.verify_role("root", root.role(Role::Root)?, &root.keys)?;
        Ok(Self {
            root,
            bytes: bytes.to_vec(),
        })
    }

    pub fn root(&self) -> &Root {
        &self.root
    }

    /// The bytes of the trusted root, to persist.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn version(&self) -> u64 {
        self.root.version
    }

    /// Moves to the next root (`version + 1`): it must be signed by the current root's
    /// threshold *and* its own. When a role's keys change, what was remembered for it is
    /// reset (TUF's fast-forward attack recovery).
    pub fn rotate(
        &mut self,
        bytes: &[u8],
        remembered: &mut RememberedVersions,
    ) -> Result<(), TufError> {
        let what = format!("{}.root.json", self.root.version + 1);
        within(&what, bytes, limits::MAX_ROOT_LEN)?;
        let raw = Unverified::parse(&what, bytes)?;
        raw.verify_role("root", self.root.role(Role::Root)?, &self.root.keys)?;
        let next: Root = raw.decode()?;
        raw.verify_role("root", next.role(Role::Root)?, &next.keys)?;
        if next.version != self.root.version + 1 {
            return Err(TufError::VersionMismatch {
                role: "root".into(),
                expected: self.root.version + 1,
                found: next.version,
            });
        }
        let mut changed = Vec::new();
        for role in [Role::Timestamp, Role::Snapshot, Role::Targets] {
            if self.root.role(role)? != next.role(role)? {
                changed.push(role);
            }
        }
        remembered.forget_rotated(|role| changed.contains(&role));
        self.root = next;
        self.bytes = bytes.to_vec();
        Ok(())
    }

    /// Fails if the (final) root has expired at `now`.
    pub fn check_expiry(&self, now: SystemTime) -> Result<(), TufError> {
        check_expiry(&self.root, now)
    }

    /// Verifies `timestamp.json`.
    pub fn verify_timestamp(
        &self,
        bytes: &[u8],
        remembered: &RememberedVersions,
        now: SystemTime,
    ) -> Result<Verified<Timestamp>, TufError> {
        let what = "timestamp.json";
        within(what, bytes, limits::MAX_TIMESTAMP_LEN)?;
        let ts: Timestamp = self.verify_signed(Role::Timestamp, what, bytes)?;
        not_older("timestamp", remembered.timestamp(), ts.version)?;
        let ts = verified(ts, bytes);
        let snap = ts.snapshot_pin()?;
        not_older("snapshot", remembered.snapshot(), snap.version)?;
        check_expiry(&*ts, now)?;
        Ok(ts)
    }

    /// Verifies `N.snapshot.json` against the timestamp that pinned it: its length and
    /// sha256 are checked before it is parsed.
    pub fn verify_snapshot(
        &self,
        bytes: &[u8],
        timestamp: &Verified<Timestamp>,
        remembered: &RememberedVersions,
        now: SystemTime,
    ) -> Result<Verified<Snapshot>, TufError> {
        let pin = timestamp.snapshot_pin()?;
        check_pin(&pin, bytes)?;
        let snap: Snapshot = self.verify_signed(Role::Snapshot, &pin.file, bytes)?;
        exact_version("snapshot", pin.version, snap.version)?;
        let snap = verified(snap, bytes);
        let targets = snap.targets_pin()?;
        not_older("targets", remembered.targets(), targets.version)?;
        check_expiry(&*snap, now)?;
        Ok(snap)
    }

    /// Verifies `N.targets.json` against the snapshot that pinned it: its length and
    /// sha256 are checked before it is parsed, so the targets key alone cannot replace
    /// it under the same version.
    pub fn verify_targets(
        &self,
        bytes: &[u8],
        snapshot: &Verified<Snapshot>,
        now: SystemTime,
    ) -> Result<Verified<Targets>, TufError> {
        let pin = snapshot.targets_pin()?;
        check_pin(&pin, bytes)?;
        let targets: Targets = self.verify_signed(Role::Targets, &pin.file, bytes)?;
        exact_version("targets", pin.version, targets.version)?;
        check_expiry(&targets, now)?;
        Ok(verified(targets, bytes))
    }

    /// Joins one refresh's verified metadata under this root, checking that each part is
    /// the one its parent pins.
    pub fn release(
        &self,
        timestamp: Verified<Timestamp>,
        snapshot: Verified<Snapshot>,
        targets: Verified<Targets>,
    ) -> Result<VerifiedRelease, TufError> {
        VerifiedRelease::new(self.root.clone(), timestamp, snapshot, targets)
    }

    fn verify_signed<T: Metadata>(
        &self,
        role: Role,
        what: &str,
        bytes: &[u8],
    ) -> Result<T, TufError> {
        let raw = Unverified::parse(what, bytes)?;
        raw.verify_role(role.name(), self.root.role(role)?, &self.root.keys)?;
        raw.decode()
    }
}

fn verified<T>(value: T, bytes: &[u8]) -> Verified<T> {
    Verified::new(value, bytes.len() as u64, Sha256::digest(bytes).into())
}

fn within(what: &str, bytes: &[u8], limit: u64) -> Result<(), TufError> {
    if bytes.len() as u64 > limit {
        return Err(TufError::TooLarge {
            what: what.into(),
            length: bytes.len() as u64,
            limit,
        });
    }
    Ok(())
}

fn not_older(role: &str, trusted: u64, offered: u64) -> Result<(), TufError> {
    if offered < trusted {
        return Err(TufError::Rollback {
            role: role.into(),
            trusted,
            offered,
        });
    }
    Ok(())
}

fn exact_version(role: &str, expected: u64, found: u64) -> Result<(), TufError> {
    if expected != found {
        return Err(TufError::VersionMismatch {
            role: role.into(),
            expected,
            found,
        });
    }
    Ok(())
}

fn check_expiry<T: Metadata>(meta: &T, now: SystemTime) -> Result<(), TufError> {
    if meta.expires().is_expired(now) {
        return Err(TufError::Expired {
            role: T::ROLE.name().into(),
            expires: meta.expires().to_string(),
            now: format_time(now),
        });
    }
    Ok(())
}

/// Checks a metadata file's bytes against its parent's pin (exact length, sha256).
pub fn check_pin(pin: &PinnedMeta, bytes: &[u8]) -> Result<(), TufError> {
    if bytes.len() as u64 != pin.length {
        return Err(TufError::LengthMismatch {
            what: pin.file.clone(),
            expected: pin.length,
            found: bytes.len() as u64,
        });
    }
    let digest: [u8; 32] = Sha256::digest(bytes).into();
    if digest != pin.sha256 {
        return Err(TufError::HashMismatch {
            what: pin.file.clone(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    fn trusted() -> (TrustedRoot, crate::SecretKey) {
        use crate::metadata::{RoleKeys, Signed};
        let key = crate::SecretKey::from_seed([3; 32]);
        let id = key.key_id().unwrap();
        let role = RoleKeys {
            keyids: vec![id.clone()],
            threshold: 1,
        };
        let root = Root {
            kind: "root".into(),
            spec_version: crate::SPEC_VERSION.into(),
            version: 1,
            expires: crate::Expiry::parse("2100-01-01T00:00:00Z").unwrap(),
            consistent_snapshot: true,
            keys: [(id, key.public())].into(),
            roles: ["root", "targets", "snapshot", "timestamp"]
                .map(|r| (r.to_string(), role.clone()))
                .into(),
        };
        let bytes = Signed::sign(root, &[&key]).unwrap().to_bytes().unwrap();
        (TrustedRoot::from_bytes(&bytes).unwrap(), key)
    }

    proptest! {
        // Metadata comes from the network: hostile bytes get an error, never a panic,
        // and are never accepted.
        #[test]
        fn arbitrary_metadata_is_refused_without_panicking(text in "\\PC{0,300}", raw in proptest::collection::vec(any::<u8>(), 0..300)) {
            let (mut root, _) = trusted();
            let now = SystemTime::now();
            let mut seen = RememberedVersions::default();
            for bytes in [text.as_bytes(), &raw[..]] {
                prop_assert!(root.verify_timestamp(bytes, &seen, now).is_err());
                prop_assert!(root.rotate(bytes, &mut seen).is_err());
                prop_assert!(TrustedRoot::from_bytes(bytes).is_err());
            }
        }

        // Canonical JSON is valid JSON that parses back to the same value.
        #[test]
        fn canonical_json_round_trips(keys in proptest::collection::vec("\\PC{0,8}", 0..6), n in any::<i64>(), s in "\\PC{0,20}") {
            let mut map = serde_json::Map::new();
            for (i, k) in keys.iter().enumerate() {
                map.insert(k.clone(), serde_json::json!([i, s.clone(), n, null, true]));
            }
            let value = serde_json::Value::Object(map);
            let bytes = crate::canonical::to_canonical(&value).unwrap();
            let back: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            prop_assert_eq!(back, value);
        }
    }
}
