//! Writes Skerry's release repository: a TUF 1.0 repository with consistent snapshots,
//! whose targets are chunk indexes and packs of board images.
//!
//! # Layout
//! - [`keys`]: the key directory (`root-N.key`, `targets.key`, `snapshot.key`,
//!   `timestamp.key`).
//! - [`repo`]: reading and atomically writing the repository's metadata.
//! - [`publish`]: `init`, `add`, root rotation and timestamp re-signing.
//! - [`pack`]: cutting an image into chunks, compressing them and writing index and pack.
//! - [`stage`]: all-or-nothing publishing: what a refused step created is removed.

pub mod error;
pub mod keys;
pub mod pack;
pub mod publish;
pub mod repo;
pub mod stage;

pub use error::ReleaseError;
pub use keys::KeySet;
pub use publish::{add_image, init, resign_timestamp, rotate_root, AddImage, Expiries};
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
