//! Why metadata was refused or could not be made.

use std::path::PathBuf;

/// Every way TUF metadata can be refused or fail to be produced.
#[derive(Debug, thiserror::Error)]
pub enum TufError {
    #[error("{what} is not valid JSON metadata")]
    Json {
        what: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("metadata cannot be written as canonical JSON: {reason}")]
    NotCanonical { reason: String },
    #[error("bad key: {reason}")]
    BadKey { reason: String },
    #[error("cannot access key file {}", path.display())]
    KeyFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{role} metadata has {valid} valid signature(s) from trusted keys, {threshold} needed"
    )]
    Threshold {
        role: String,
        valid: usize,
        threshold: u32,
    },
    #[error("expected {expected} metadata, found _type \"{found}\"")]
    WrongType { expected: String, found: String },
    #[error("unsupported TUF spec_version \"{found}\" in {role} metadata (need 1.x)")]
    SpecVersion { role: String, found: String },
    #[error("{role} metadata expired at {expires} (trusted time is {now}); the repository must re-sign it")]
    Expired {
        role: String,
        expires: String,
        now: String,
    },
    #[error("{role} metadata version {offered} is older than the trusted version {trusted} (rollback attack?)")]
    Rollback {
        role: String,
        trusted: u64,
        offered: u64,
    },
    #[error("{role} metadata has version {found}, but {expected} was expected")]
    VersionMismatch {
        role: String,
        expected: u64,
        found: u64,
    },
    #[error("{what} does not match its signed sha256")]
    HashMismatch { what: String },
    #[error("{what} is {found} bytes long, but the signed length is {expected}")]
    LengthMismatch {
        what: String,
        expected: u64,
        found: u64,
    },
    #[error("{role} metadata lists {file} without its length and sha256; every metadata file must be pinned by hash (republish with a current release tool)")]
    Unpinned { role: String, file: String },
    #[error("{role} metadata lists {file} with a malformed sha256 \"{value}\"")]
    BadHash {
        role: String,
        file: String,
        value: String,
    },
    #[error("{what} is {length} bytes, more than the {limit} bytes this device accepts")]
    TooLarge {
        what: String,
        length: u64,
        limit: u64,
    },
    #[error("{what} is longer than its signed length of {expected} bytes")]
    LongerThanSigned { what: String, expected: u64 },
    #[error("root metadata defines no keys for the {role} role")]
    MissingRole { role: String },
    #[error("{role} metadata does not list {file}")]
    MissingMeta { role: String, file: String },
    #[error("bad expiry \"{value}\": {reason}")]
    BadExpiry { value: String, reason: String },
    #[error("threshold must be between 1 and the number of keys ({keys}), got {threshold}")]
    BadThreshold { threshold: u32, keys: usize },
}
