//! Results of the verification chain, as types nothing else can make.
//!
//! A [`Verified<T>`] is metadata that passed its role's threshold, expiry, rollback and
//! pinning checks under a [`TrustedRoot`](crate::TrustedRoot); its constructor is private
//! to this crate, so code that takes a `Verified<Targets>` cannot be handed targets that
//! were only parsed. [`VerifiedRelease`] is one refresh's timestamp, snapshot and targets,
//! checked to chain by version *and* by the sha256 of the bytes each was verified from.
//! [`RememberedVersions`] changes only through the chain's methods.

use std::ops::Deref;

use serde::{Deserialize, Serialize};

use crate::error::TufError;
use crate::metadata::{MetaFile, Role, Root, Snapshot, Targets, Timestamp};

/// Metadata that passed the verification chain, with the length and sha256 of the exact
/// bytes it was verified from.
#[derive(Debug, Clone)]
pub struct Verified<T> {
    value: T,
    length: u64,
    sha256: [u8; 32],
}

impl<T> Verified<T> {
    pub(crate) fn new(value: T, length: u64, sha256: [u8; 32]) -> Self {
        Self {
            value,
            length,
            sha256,
        }
    }

    /// The sha256 of the bytes this was verified from.
    pub fn sha256(&self) -> &[u8; 32] {
        &self.sha256
    }

    /// The length of the bytes this was verified from.
    pub fn length(&self) -> u64 {
        self.length
    }

    /// The metadata itself, no longer marked verified.
    pub fn into_inner(self) -> T {
        self.value
    }
}

impl<T> Deref for Verified<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

/// Caps on metadata files: a parent's signed length is believed only up to these, so a
/// hostile but validly signed length cannot make the device allocate without bound.
pub mod limits {
    /// The most bytes of one `N.root.json`.
    pub const MAX_ROOT_LEN: u64 = 512 * 1024;
    /// The most bytes of `timestamp.json` (nothing pins its length).
    pub const MAX_TIMESTAMP_LEN: u64 = 64 * 1024;
    /// The most bytes of `N.snapshot.json`, whatever the timestamp lists.
    pub const MAX_SNAPSHOT_LEN: u64 = 4 * 1024 * 1024;
    /// The most bytes of `N.targets.json`, whatever the snapshot lists.
    pub const MAX_TARGETS_LEN: u64 = 32 * 1024 * 1024;
}

/// A metadata file as its (verified) parent pins it: version, length and sha256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinnedMeta {
    /// The repository file under `metadata/`, like `7.targets.json`.
    pub file: String,
    pub version: u64,
    /// The exact length; fetch at most this many bytes.
    pub length: u64,
    pub sha256: [u8; 32],
}

impl PinnedMeta {
    /// Reads the entry `name` (`"snapshot.json"`) of `parent`'s `meta`, requiring a length
    /// within `limit` and a well-formed sha256: a listing by version alone would let
    /// whoever holds the child role's key alone swap the file under the same version.
    pub(crate) fn from_listing(
        parent: Role,
        meta: &std::collections::BTreeMap<String, MetaFile>,
        name: &str,
        limit: u64,
    ) -> Result<Self, TufError> {
        let entry = meta.get(name).ok_or_else(|| TufError::MissingMeta {
            role: parent.name().into(),
            file: name.into(),
        })?;
        let unpinned = || TufError::Unpinned {
            role: parent.name().into(),
            file: name.into(),
        };
        let length = entry.length.ok_or_else(unpinned)?;
        let sha_hex = entry
            .hashes
            .as_ref()
            .and_then(|h| h.get("sha256"))
            .ok_or_else(unpinned)?;
        let mut sha256 = [0u8; 32];
        hex::decode_to_slice(sha_hex, &mut sha256).map_err(|_| TufError::BadHash {
            role: parent.name().into(),
            file: name.into(),
            value: sha_hex.chars().take(80).collect(),
        })?;
        if length > limit {
            return Err(TufError::TooLarge {
                what: format!("{name} as listed by {}", parent.name()),
                length,
                limit,
            });
        }
        Ok(Self {
            file: format!("{}.{name}", entry.version),
            version: entry.version,
            length,
            sha256,
        })
    }
}

impl Verified<Timestamp> {
    /// The snapshot this timestamp pins.
    pub fn snapshot_pin(&self) -> Result<PinnedMeta, TufError> {
        PinnedMeta::from_listing(
            Role::Timestamp,
            &self.meta,
            "snapshot.json",
            limits::MAX_SNAPSHOT_LEN,
        )
    }
}

impl Verified<Snapshot> {
    /// The targets this snapshot pins.
    pub fn targets_pin(&self) -> Result<PinnedMeta, TufError> {
        PinnedMeta::from_listing(
            Role::Snapshot,
            &self.meta,
            "targets.json",
            limits::MAX_TARGETS_LEN,
        )
    }
}

/// The verified metadata of one refresh: a timestamp, the snapshot it pins and the
/// targets that snapshot pins, under one root.
#[derive(Debug, Clone)]
pub struct VerifiedRelease {
    root: Root,
    timestamp: Verified<Timestamp>,
    snapshot: Verified<Snapshot>,
    targets: Verified<Targets>,
}

impl VerifiedRelease {
    /// Joins the three, checking each is exactly (version, length, sha256) what its
    /// parent pins, so parts of two refreshes cannot be mixed.
    pub(crate) fn new(
        root: Root,
        timestamp: Verified<Timestamp>,
        snapshot: Verified<Snapshot>,
        targets: Verified<Targets>,
    ) -> Result<Self, TufError> {
        check_pinned(&timestamp.snapshot_pin()?, &snapshot, snapshot.version)?;
        check_pinned(&snapshot.targets_pin()?, &targets, targets.version)?;
        Ok(Self {
            root,
            timestamp,
            snapshot,
            targets,
        })
    }

    pub fn root(&self) -> &Root {
        &self.root
    }

    pub fn timestamp(&self) -> &Verified<Timestamp> {
        &self.timestamp
    }

    pub fn snapshot(&self) -> &Verified<Snapshot> {
        &self.snapshot
    }

    pub fn targets(&self) -> &Verified<Targets> {
        &self.targets
    }
}

fn check_pinned<T>(pin: &PinnedMeta, got: &Verified<T>, version: u64) -> Result<(), TufError> {
    if pin.version != version {
        return Err(TufError::VersionMismatch {
            role: pin.file.clone(),
            expected: pin.version,
            found: version,
        });
    }
    if pin.length != got.length || pin.sha256 != got.sha256 {
        return Err(TufError::HashMismatch {
            what: pin.file.clone(),
        });
    }
    Ok(())
}

/// Versions the device has trusted before: offering anything older is a rollback.
/// They move only by recording a [`VerifiedRelease`] or by a root rotation's reset.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RememberedVersions {
    timestamp: u64,
    snapshot: u64,
    targets: u64,
}

impl RememberedVersions {
    pub fn timestamp(&self) -> u64 {
        self.timestamp
    }

    pub fn snapshot(&self) -> u64 {
        self.snapshot
    }

    pub fn targets(&self) -> u64 {
        self.targets
    }

    /// Remembers the versions of a release the chain verified against these versions.
    pub fn record(&mut self, release: &VerifiedRelease) {
        self.timestamp = release.timestamp.version;
        self.snapshot = release.snapshot.version;
        self.targets = release.targets.version;
    }

    /// Forgets what a root rotation makes stale (TUF 1.0 §5.3.11): a change of the
    /// timestamp *or* snapshot keys forgets both versions, so one fast-forwarded with a
    /// compromised key does not lock the device out; a change of the targets keys
    /// forgets the targets version. `changed` says whether a role's keys changed.
    pub fn forget_rotated(&mut self, changed: impl Fn(Role) -> bool) {
        if changed(Role::Timestamp) || changed(Role::Snapshot) {
            self.timestamp = 0;
            self.snapshot = 0;
        }
        if changed(Role::Targets) {
            self.targets = 0;
        }
    }
}
