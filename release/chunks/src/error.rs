//! Why a chunk index was refused.

/// A chunk index that does not parse or does not match its signed hashes.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("chunk index {part} is truncated: {needed} bytes needed, {found} present")]
    Truncated {
        part: &'static str,
        needed: usize,
        found: usize,
    },
    #[error("not a Skerry chunk index (bad magic)")]
    BadMagic,
    #[error("chunk index is invalid: {reason}")]
    Invalid { reason: String },
    #[error("chunk index {what} is {value}, more than the {limit} this device accepts")]
    TooLarge {
        what: &'static str,
        value: u64,
        limit: u64,
    },
    #[error("chunk index page {page} does not match its hash in the signed head")]
    PageHash { page: usize },
}
