//! `file://` repositories: a directory on a local or mounted filesystem.

use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;

use super::{FetchError, Transport};

/// Reads repository files from a directory.
#[derive(Debug, Clone)]
pub struct FileTransport {
    root: PathBuf,
}

impl FileTransport {
    pub fn new(root: PathBuf) -> Self {
        Self { root }
    }
}

impl Transport for FileTransport {
    fn open(
        &self,
        path: &str,
        start: u64,
        end: Option<u64>,
    ) -> Result<Box<dyn Read + Send>, FetchError> {
        // Repository paths are relative and plain: `..`, an absolute path or a prefix
        // would open a file outside the repository.
        let plain = std::path::Path::new(path)
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)));
        if !plain || path.is_empty() {
            return Err(FetchError::BadPath { path: path.into() });
        }
        let full = self.root.join(path);
        let url = self.url(path);
        let mut file = std::fs::File::open(&full).map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                FetchError::NotFound { url: url.clone() }
            } else {
                FetchError::Io {
                    url: url.clone(),
                    source,
                }
            }
        })?;
        file.seek(SeekFrom::Start(start))
            .map_err(|source| FetchError::Io { url, source })?;
        Ok(match end {
            Some(end) => Box::new(file.take(end.saturating_sub(start))),
            None => Box::new(file),
        })
    }

    fn url(&self, path: &str) -> String {
        format!("file://{}", self.root.join(path).display())
    }
}
