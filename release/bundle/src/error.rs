//! Why a bundle was refused.

use std::path::PathBuf;

/// Every way a bundle's structure can be wrong, or reading it can fail.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("cannot read bundle {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("not a Skerry bundle (its first bytes are not \"SKRYBDL1\"); cut one with `skerryctl release bundle`")]
    BadMagic,
    #[error("the bundle is cut short: its {part} needs {needed} bytes, {found} are there")]
    Truncated {
        part: &'static str,
        needed: u64,
        found: u64,
    },
    #[error("the bundle is {found} bytes, longer than the {expected} its header describes")]
    TrailingBytes { expected: u64, found: u64 },
    #[error("the bundle declares {value} {what}, more than the {limit} allowed")]
    OverLimit {
        what: &'static str,
        value: u64,
        limit: u64,
    },
    #[error("the bundle's table of contents is damaged (its sha256 does not match the header)")]
    TocDamaged,
    #[error("the bundle's table of contents is malformed: {reason}")]
    BadToc { reason: String },
    #[error("the bundle names a file \"{name}\" that is not a plain repository path ({reason})")]
    BadName { name: String, reason: &'static str },
    #[error("the bundle lists \"{name}\" twice")]
    Duplicate { name: String },
    #[error("the bundle's extents of \"{name}\" are not sorted, separate ranges inside the file: {reason}")]
    BadExtent { name: String, reason: String },
    #[error("the bundle's extents hold {declared} bytes of data, but its header says {data_len}: the table of contents points outside the data")]
    OutsideData { declared: u64, data_len: u64 },
}
