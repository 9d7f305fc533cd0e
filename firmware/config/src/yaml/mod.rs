//! A bounded YAML front end: events from `saphyr-parser` become a tree of nodes that keep
//! their line and column, and a serde deserializer over that tree reports where each error is.
//!
//! Layout: `tree` builds documents under [`crate::Limits`]; `de` deserializes a node;
//! `emit` renders a JSON value back as canonical YAML.

pub mod de;
pub mod emit;
pub mod tree;

pub use tree::{parse_stream, Mark, Node, NodeKind, TreeError};
