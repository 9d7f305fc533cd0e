//! Changing a config by patch: strategic merge ([`strategic`]) and RFC 6902 JSON Patch
//! ([`json`]). Both work on JSON values and decode the result strictly again, so a patch can
//! never produce a config the decoder would refuse.

pub mod json;
pub mod strategic;

use serde_json::Value;

use crate::document::Config;
use crate::{DecodeError, Limits};

pub use json::{json_patch, json_patch_tree};
pub use strategic::strategic_merge;

/// Why a patch could not be applied.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PatchError {
    #[error("the patch could not be read: {0}")]
    Read(DecodeError),
    #[error("patch document {index}: {message}")]
    Document { index: usize, message: String },
    #[error("patch document {index}: `$patch: delete` of {what}, which the config does not have")]
    NothingToDelete { index: usize, what: String },
    #[error("the JSON patch is {bytes} bytes, more than the limit of {limit}")]
    TooLarge { bytes: usize, limit: usize },
    #[error("the JSON patch is not an RFC 6902 operation list: {0}")]
    NotJsonPatch(String),
    #[error("the JSON patch failed: {0}")]
    Apply(String),
    #[error("the patched config is refused: {0}")]
    Result(DecodeError),
}

/// Renders patched documents and decodes them strictly.
fn reassemble(docs: &[Value]) -> Result<Config, PatchError> {
    let text: Vec<String> = docs.iter().map(crate::yaml::emit::render).collect();
    crate::document::decode_with(&text.join("---\n"), &Limits::DEFAULT)
        .map(|(c, _)| c)
        .map_err(PatchError::Result)
}
