//! [`MediumError`]: why bytes could not be read or made durable.

use std::path::{Path, PathBuf};

/// Why a medium or directory operation failed.
#[derive(Debug, thiserror::Error)]
pub enum MediumError {
    #[error("cannot {action} {}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} cannot be used here: {reason}", path.display())]
    Unsupported { path: PathBuf, reason: String },
    #[error("{} holds {len} bytes, more than the {limit} we read into memory", path.display())]
    TooLarge { path: PathBuf, len: u64, limit: u64 },
}

impl MediumError {
    /// An I/O error while doing `action` on `path`.
    pub fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| MediumError::Io {
            action,
            path,
            source,
        }
    }

    /// Whether the file does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, MediumError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
    }

    /// The file or directory the error is about.
    pub fn path(&self) -> &Path {
        match self {
            MediumError::Io { path, .. }
            | MediumError::Unsupported { path, .. }
            | MediumError::TooLarge { path, .. } => path,
        }
    }

    /// The error as an [`std::io::Error`] (for crates whose errors carry one), keeping the
    /// original one when there is one.
    pub fn into_io(self) -> std::io::Error {
        match self {
            MediumError::Io { source, .. } => source,
            other => std::io::Error::other(other.to_string()),
        }
    }
}
