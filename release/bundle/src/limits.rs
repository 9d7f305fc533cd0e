//! Our ceilings on what a bundle's header and table of contents may declare.
//!
//! A bundle comes from a USB stick of unknown history: every count and length is checked
//! against these before anything is allocated for it.

/// The most files in one bundle: a root chain, three metadata files, a description and
/// the index and pack of a release need a handful; this leaves room for long root chains.
pub const MAX_FILES: u32 = 4096;

/// The most extents in one bundle: one per run of pack chunks a device lacks, so a delta
/// of a million separate chunks (16 GiB at the default chunk size) still fits.
pub const MAX_EXTENTS: u32 = 1 << 20;

/// The longest file name (a repository path).
pub const MAX_NAME_LEN: usize = 255;

/// The most bytes of a table of contents: every file at the longest name and every
/// extent, so a valid count never meets this first.
pub const MAX_TOC_LEN: u64 =
    MAX_FILES as u64 * (2 + MAX_NAME_LEN as u64 + 8 + 4) + MAX_EXTENTS as u64 * 16;

/// The largest file a bundle may describe (and the most data bytes it may hold): 1 TiB,
/// far past any slot image, and small enough that offsets never overflow.
pub const MAX_FILE_LEN: u64 = 1 << 40;
