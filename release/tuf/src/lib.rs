//! TUF 1.0 metadata for Skerry releases, shared by the release tooling (which signs) and
//! the device's installer (which verifies).
//!
//! # Layout
//! - [`canonical`]: the canonical JSON form that signatures and key ids are computed over
//!   (the OLPC/securesystemslib dialect every TUF implementation uses).
//! - [`key`]: ed25519 keys, key ids and signing.
//! - [`metadata`]: the four roles' metadata (`root`, `targets`, `snapshot`, `timestamp`)
//!   and the signed envelope.
//! - [`expiry`]: expiry dates and durations.
//! - [`trust`]: the client's verification chain: root rotation, thresholds, expiry against
//!   a time floor, rollback and freeze protection, every file pinned by its parent's
//!   length and sha256.
//! - [`verity`]: a slot's dm-verity parameters, one spelling, parsed strictly.
//! - [`verified`]: what the chain produces ([`Verified<T>`], [`VerifiedRelease`]) and the
//!   versions it remembers, as types only the chain can make or move.

pub mod canonical;
pub mod error;
pub mod expiry;
pub mod image;
pub mod key;
pub mod metadata;
pub mod trust;
pub mod verified;
pub mod verity;

pub use error::TufError;
pub use expiry::{parse_duration, Expiry};
pub use image::{ImageCustom, ImageRelease};
pub use key::{KeyId, PublicKey, SecretKey};
pub use metadata::{
    MetaFile, Role, RoleKeys, Root, Signature, Signed, Snapshot, TargetFile, Targets, Timestamp,
    SPEC_VERSION,
};
pub use trust::TrustedRoot;
pub use verified::{limits, PinnedMeta, RememberedVersions, Verified, VerifiedRelease};
