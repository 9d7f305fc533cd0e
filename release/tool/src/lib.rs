//! Writes Skerry's release repository: a TUF 1.0 repository with consistent snapshots,
//! whose targets are chunk indexes and packs of board images.
//!
//! # Layout
//! - [`keys`]: the key directory (`root-N.key`, `targets.key`, `snapshot.key`,
//!   `timestamp.key`).
//! - [`repo`]: reading and atomically writing the repository's metadata.
//! - [`publish`]: `init`, `add`, root rotation and timestamp re-signing.
//! - [`pack`]: cutting an image into chunks, compressing them and writing index and pack.
//! - [`bundle`]: cutting an offline bundle for a site without network.
//! - [`stage`]: all-or-nothing publishing: what a refused step created is removed.
//! - [`delta`]: patched chunks of a release against earlier releases (`--delta-from`).
//! - [`published`]: reading a published release back (index, pack, patch sets).
//! - [`needs`]: which chunks and patches a device on a base release needs.

pub mod bundle;
pub mod delta;
pub mod error;
pub mod keys;
pub mod needs;
pub mod pack;
pub mod publish;
pub mod published;
pub mod repo;
pub mod stage;
pub mod swu;
pub mod verity;

pub use error::ReleaseError;
pub use keys::KeySet;
pub use needs::{objects_needed, NeededObjects, ObjectRange};
pub use publish::{
    add_image, add_image_with_deltas, init, resign_timestamp, rotate_root, AddImage, AddedPatches,
    Deltas, Expiries,
};
pub use repo::Repository;

/// Checks a board name: lowercase letters, digits, `-`, `_`, `.`, not starting with `.`.
pub fn check_board(board: &str) -> Result<(), ReleaseError> {
    let ok = !board.is_empty()
        && !board.starts_with('.')
        && board.len() <= 64
        && board
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(ReleaseError::BadName {
            what: "board",
            value: board.into(),
        })
    }
}
