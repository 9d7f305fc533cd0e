//! A request path inside the repository: `metadata/…` or `targets/…`, segments of
//! `[A-Za-z0-9._+-]` (no empty, `.` or `..` segment, no percent-encoding, no `*.tmp`
//! file of a write in progress), bounded in length and depth. The opened file is then
//! checked, after resolving symlinks, to lie inside the repository.

/// Longest path accepted.
pub const MAX_PATH_LEN: usize = 1024;
/// Deepest path accepted.
pub const MAX_SEGMENTS: usize = 16;
const MAX_SEGMENT_LEN: usize = 255;

/// A checked relative path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoPath(String);

/// Why a path was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("the path is longer than {MAX_PATH_LEN} bytes")]
    TooLong,
    #[error("the path has more than {MAX_SEGMENTS} segments")]
    TooDeep,
    #[error("percent-encoded paths are not served (repository names need no encoding)")]
    Encoded,
    #[error("segment {index} of the path is empty, `.` or `..`")]
    BadSegment { index: usize },
    #[error("segment {index} of the path has a character outside [A-Za-z0-9._+-] or is too long")]
    BadCharacter { index: usize },
    #[error("only metadata/ and targets/ are served")]
    OutsideRepository,
    #[error("files being written (*.tmp) are not served")]
    Temporary,
}

impl RepoPath {
    /// Checks `raw` (the request path after `/repository/`).
    pub fn new(raw: &str) -> Result<Self, PathError> {
        if raw.len() > MAX_PATH_LEN {
            return Err(PathError::TooLong);
        }
        if raw.contains('%') {
            return Err(PathError::Encoded);
        }
        let segments: Vec<&str> = raw.split('/').collect();
        if segments.len() > MAX_SEGMENTS {
            return Err(PathError::TooDeep);
        }
        for (index, s) in segments.iter().enumerate() {
            if s.is_empty() || *s == "." || *s == ".." {
                return Err(PathError::BadSegment { index });
            }
            let ok = s.len() <= MAX_SEGMENT_LEN
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._+-".contains(&b));
            if !ok {
                return Err(PathError::BadCharacter { index });
            }
        }
        if segments.len() < 2 || !matches!(segments[0], "metadata" | "targets") {
            return Err(PathError::OutsideRepository);
        }
        if raw.ends_with(".tmp") {
            return Err(PathError::Temporary);
        }
        Ok(Self(raw.into()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// How long caches may keep the file: content-addressed targets forever, the
    /// timestamp briefly, other metadata for minutes.
    pub fn cache_control(&self) -> &'static str {
        let name = self.0.rsplit('/').next().unwrap_or("");
        if self.0 == "metadata/timestamp.json" {
            "public, max-age=30"
        } else if self.0.starts_with("targets/") && is_content_addressed(name) {
            "public, max-age=31536000, immutable"
        } else {
            "public, max-age=300"
        }
    }

    pub fn content_type(&self) -> &'static str {
        if self.0.ends_with(".json") {
            "application/json"
        } else {
            "application/octet-stream"
        }
    }
}

/// `<64 hex>.rest`: a consistent-snapshot target named by its sha256.
fn is_content_addressed(name: &str) -> bool {
    name.len() > 65
        && name.as_bytes()[64] == b'.'
        && name[..64].bytes().all(|b| b.is_ascii_hexdigit())
}
