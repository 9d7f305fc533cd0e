//! The bytes Skerry persists state in, and how they survive power loss.
//!
//! The boot stores, the runtime's file log and the installer's device state all write
//! through this crate, so they are all tested under the same power-loss model.
//!
//! # Layout
//! - [`dir`]: [`Directory`], a directory of named files with explicit durability, and
//!   [`HostDir`], the host's.
//! - [`medium`]: [`Medium`], the bytes of one store, and [`FileMedium`].
//! - [`atomic`]: the one atomic whole-file write ([`write_atomic`], [`replace_file`]).
//! - [`error`]: the error type, [`MediumError`].
//! - [`memory`]: [`MemoryMedium`], bytes in memory (fuzzing).
//! - `power_cut` and `lossy` (feature `test-support`): [`PowerCutMedium`], memory that
//!   loses power after N bytes, and `lossy::LossyFs`, a page-cache model that loses
//!   unflushed sectors in any order and un-synced renames, with a FAT mode.

pub mod atomic;
pub mod dir;
pub mod error;
#[cfg(feature = "test-support")]
pub mod lossy;
pub mod medium;
pub mod memory;
#[cfg(feature = "test-support")]
pub mod power_cut;

pub use atomic::{replace_file, write_atomic};
pub use dir::{Directory, HostDir};
pub use error::MediumError;
pub use medium::{FileMedium, FsMedium, Medium};
pub use memory::MemoryMedium;
#[cfg(feature = "test-support")]
pub use power_cut::PowerCutMedium;
