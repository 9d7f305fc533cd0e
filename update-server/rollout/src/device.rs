//! What the server knows of one device when it decides, and the device's wave seed.

use std::collections::{BTreeMap, BTreeSet};

use semver::Version;
use sha2::{Digest, Sha256};

use crate::waves::BASIS_POINTS;

/// A device's stable place in every rollout's waves: a number in `0..10_000` derived
/// from its id alone, so it never changes between check-ins or server restarts, and a
/// device offered at 10 % is still offered at 20 %.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WaveSeed(u16);

impl WaveSeed {
    /// The seed of the device named `device_id`.
    pub fn of(device_id: &str) -> Self {
        let mut hash = Sha256::new();
        hash.update(b"skerry wave seed v1\0");
        hash.update(device_id.as_bytes());
        let digest = hash.finalize();
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        Self((u64::from_le_bytes(first) % u64::from(BASIS_POINTS)) as u16)
    }

    /// A seed given directly (tests, tools); values past the range wrap into it.
    pub fn from_basis_points(bp: u16) -> Self {
        Self(bp % BASIS_POINTS)
    }

    /// The seed in basis points, `0..10_000`.
    pub fn basis_points(self) -> u16 {
        self.0
    }
}

/// An operator's pin: the device runs this release and is offered nothing else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pin {
    pub version: Version,
    /// Offer the pinned release even if the device rolled back from it.
    pub force: bool,
}

/// The device as the decision needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceFacts {
    pub id: String,
    pub board: String,
    /// The channel the device itself is configured for (it checks the signed metadata
    /// against it too); the server never offers a release of another channel.
    pub channel: String,
    pub labels: BTreeMap<String, String>,
    /// The release the device runs now.
    pub version: Version,
    pub seed: WaveSeed,
    pub pin: Option<Pin>,
    /// Every release this device rolled back from (kept apart from the bounded
    /// timeline, so an old rollback is never forgotten).
    pub rolled_back_from: BTreeSet<Version>,
}
