//! Why a release step failed.

use std::path::PathBuf;

/// Every way writing the repository can fail. Nothing is published on error: new files
/// are written under temporary names and renamed last.
#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    #[error("cannot access {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Tuf(#[from] skerry_tuf::TufError),
    #[error("the verity parameters {} are refused: {reason}", path.display())]
    BadVerity { path: PathBuf, reason: String },
    #[error("{} already exists; refusing to overwrite", path.display())]
    Exists { path: PathBuf },
    #[error("{} is not an initialized repository (no metadata/1.root.json); run `skerryctl release init`", repo.display())]
    NotInitialized { repo: PathBuf },
    #[error("key directory {} has no {what}; run `skerryctl release keygen`", dir.display())]
    MissingKey { dir: PathBuf, what: String },
    #[error("{what} \"{value}\" is invalid (use lowercase letters, digits, '-', '_', '.')")]
    BadName { what: &'static str, value: String },
    #[error("version \"{value}\" is not semantic versioning (like 1.2.3)")]
    BadVersion {
        value: String,
        #[source]
        source: semver::Error,
    },
    #[error("{board} {version} is already released; versions are immutable")]
    AlreadyReleased { board: String, version: String },
    #[error("cannot read image {}", path.display())]
    UnreadableImage {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("image {} is empty", path.display())]
    EmptyImage { path: PathBuf },
    #[error("the keys in {} do not match the repository's {role} role; wrong key directory?", dir.display())]
    WrongKeys { dir: PathBuf, role: String },
    #[error("{board} {version} is not released in this repository")]
    NoSuchRelease { board: String, version: String },
    #[error("cannot publish patches of {version} from {base}: {reason}")]
    BadDeltaBase {
        version: String,
        base: String,
        reason: String,
    },
    #[error("repository metadata {} is damaged: {reason}", path.display())]
    Damaged { path: PathBuf, reason: String },
}

impl ReleaseError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| ReleaseError::Io { path, source }
    }
}
