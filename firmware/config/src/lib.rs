//! The Skerry machine config: multi-document YAML, one `kind:` per document, decoded strictly.
//!
//! An unknown or deprecated key is an error naming the document, key path, line and column;
//! input is bounded ([`Limits`]) before and while it is parsed; [`validate`] lists every
//! problem of a decoded config at once. The crate also gives the JSON Schema, strategic-merge
//! and RFC 6902 patches, a dry-run diff, the apply mode a change needs, and the versioned
//! format the daemon persists the config and its history in.
//!
//! Layout:
//! - `yaml`: bounded parse to positioned nodes, a positioned serde deserializer, canonical emit
//! - `kinds`: the document types; `document`: decoding and rendering the whole config
//! - `validate`, `schema`, `patch`, `diff`, `apply`, `persist`

pub mod apply;
pub mod diff;
pub mod document;
pub mod error;
pub mod kinds;
pub mod limits;
pub mod patch;
pub mod persist;
pub mod schema;
pub mod source;
pub mod validate;
pub mod yaml;

pub use apply::{required_mode, ApplyMode, Effect, ModeDecision, ModeError};
pub use document::{decode, decode_with, Config, Kind, API_VERSION};
pub use error::{DecodeError, DocumentRef};
pub use limits::Limits;
pub use schema::document_schema;
pub use source::{DocKey, SourceMap};
pub use validate::{validate, ValidationErrors, ValidationProblem};
