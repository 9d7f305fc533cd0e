//! The offline bundle: one file that carries repository files to a site with no network,
//! whole (metadata, indexes) or as extents (only the pack bytes a device on a given base
//! lacks), so the installer reads it like a repository.
//!
//! ```text
//! bundle = header (64 bytes) ‖ toc (toc_len bytes) ‖ data (data_len bytes)
//! header: "SKRYBDL1" ‖ file_count u32 ‖ extent_count u32 ‖ toc_len u64 ‖ data_len u64 ‖
//!         toc_sha256 [32]
//! toc:    file_count × (name_len u16 ‖ name ‖ file_len u64 ‖ extents u32)
//!         ‖ extent_count × (file_offset u64 ‖ length u64)     (grouped by file, in order)
//! data:   every extent's bytes, in toc order
//! ```
//! All integers little-endian. A file's extents are sorted, non-empty, never overlapping
//! or touching (the writer merges adjacent ranges) and inside the file's length, so any
//! byte range of a file lies in at most one extent. Where an extent's bytes are in the
//! bundle is not stored: it follows from the extents before it, so no offset can point
//! outside the data, and the bundle's length must be exactly header + toc + data.
//!
//! The table of contents only says where bytes are. Whether they are the right bytes is
//! decided by the same TUF chain and chunk hashes as for a network install: the bundle
//! itself is not signed, and nothing it says is trusted beyond locating bytes.
//!
//! # Layout
//! - [`limits`]: our ceilings on every count and length the header and toc declare.
//! - [`name`]: the path rules for file names (those of a repository: no traversal).
//! - [`toc`]: encoding and validating the header and the table of contents.
//! - [`file`]: a bundle on disk, checked against its table of contents, read by range.

pub mod error;
pub mod file;
pub mod limits;
pub mod name;
pub mod toc;

pub use error::BundleError;
pub use file::BundleFile;
pub use name::check_name;
pub use toc::{Extent, FileEntry, Toc, HEADER_LEN, MAGIC};

/// The informational file every bundle carries: what it was cut for (`{"board", "version",
/// "from"}`), so a refusal can name the base a device needs. Unsigned: never trusted.
pub const DESCRIPTION: &str = "bundle.json";
