//! Decoding errors: each names the document (index and kind), the key path and the line.

use std::fmt;

use crate::yaml::TreeError;

/// A document by its position in the stream and its kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentRef {
    /// Index in the stream, from 0.
    pub index: usize,
    /// The `kind:` value.
    pub kind: String,
}

impl fmt::Display for DocumentRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "document {} ({})", self.index, self.kind)
    }
}

/// Why a config stream could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("config refused: {0}")]
    Yaml(#[from] TreeError),
    #[error("document {index} (line {line}) is not a mapping of keys")]
    NotAMapping { index: usize, line: usize },
    #[error("document {index} (line {line}) has no `{key}`")]
    MissingHeader {
        index: usize,
        key: &'static str,
        line: usize,
    },
    #[error("document {index}, line {line}, column {column}: unknown kind `{kind}` (known: MachineConfig, NetworkConfig, TimeConfig, ServiceConfig, WatchdogConfig, UpdateConfig, FleetConfig)")]
    UnknownKind {
        index: usize,
        kind: String,
        line: usize,
        column: usize,
    },
    #[error(
        "{document}, line {line}: apiVersion `{found}` is not `{}`",
        crate::API_VERSION
    )]
    ApiVersion {
        document: DocumentRef,
        found: String,
        line: usize,
    },
    #[error("{document}, line {line}: a second {} document (the first is document {first})", document.kind)]
    DuplicateDocument {
        document: DocumentRef,
        line: usize,
        first: usize,
    },
    #[error("{document}, `{path}` at line {line}, column {column}: deprecated key, {hint}")]
    Deprecated {
        document: DocumentRef,
        path: String,
        line: usize,
        column: usize,
        hint: &'static str,
    },
    #[error("{document}, `{path}` at line {line}, column {column}: {problem}")]
    Field {
        document: DocumentRef,
        path: String,
        line: usize,
        column: usize,
        problem: String,
    },
}

impl DecodeError {
    /// The line the error points at, when it points at one.
    pub fn line(&self) -> Option<usize> {
        match self {
            DecodeError::Yaml(t) => match t {
                TreeError::TooDeep { at, .. }
                | TreeError::TooManyNodes { at, .. }
                | TreeError::Syntax { at, .. }
                | TreeError::UnknownAlias { at }
                | TreeError::DuplicateKey { at, .. }
                | TreeError::ComplexKey { at }
                | TreeError::Tag { at, .. } => Some(at.line),
                TreeError::TooLarge { .. } | TreeError::TooManyDocuments { .. } => None,
            },
            DecodeError::NotAMapping { line, .. }
            | DecodeError::MissingHeader { line, .. }
            | DecodeError::UnknownKind { line, .. }
            | DecodeError::ApiVersion { line, .. }
            | DecodeError::DuplicateDocument { line, .. }
            | DecodeError::Deprecated { line, .. }
            | DecodeError::Field { line, .. } => Some(*line),
        }
    }
}
