//! Bounds on config input, checked before and while it is parsed.
//!
//! A config arrives from an operator over the API or from `/var`: every size and count in it
//! is bounded here before we build anything from it, so a hostile file (an alias bomb, deep
//! nesting, a huge stream) is refused fast with an error naming the limit.

/// The limits a config stream must stay within.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes in the whole YAML stream.
    pub max_bytes: usize,
    /// Documents in the stream.
    pub max_documents: usize,
    /// Nesting depth of collections inside one document.
    pub max_depth: usize,
    /// Nodes in the whole stream, counting every node an alias expands to.
    pub max_nodes: usize,
}

impl Limits {
    /// The limits the daemon and `skerryctl` use: generous for a real machine config
    /// (a few KiB, a dozen documents), small enough to parse in milliseconds.
    pub const DEFAULT: Limits = Limits {
        max_bytes: 256 * 1024,
        max_documents: 64,
        max_depth: 24,
        max_nodes: 50_000,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}
