//! `bundle:FILE` repositories: an offline bundle (see `skerry-bundle`) read as if it were
//! the repository it was cut from, range reads included, so the metadata walk and the
//! install run exactly as over the network, with the same TUF chain, time floor and
//! rollback rules.
//!
//! The bundle's structure (table of contents, names, lengths) is validated when it is
//! opened; its content is trusted no more than a server's: every byte is checked by the
//! metadata chain and the chunk hashes. A delta bundle holds only what a device on its
//! base lacks; a device asking for anything else is told which base the bundle needs.

use std::io::Read;
use std::path::{Path, PathBuf};

use skerry_bundle::{BundleFile, FileEntry};

use super::{FetchError, Transport};

/// What the bundle says it was cut for (unsigned: used in messages only).
#[derive(Debug, Clone, serde::Deserialize)]
struct CutFor {
    board: String,
    version: String,
    from: Option<String>,
}

/// Reads repository files from a bundle.
#[derive(Debug, Clone)]
pub struct BundleTransport {
    bundle: BundleFile,
    cut_for: Option<CutFor>,
}

impl BundleTransport {
    /// Opens and validates the bundle at `path`.
    pub fn open(path: &Path) -> Result<Self, FetchError> {
        let bundle = BundleFile::open(path).map_err(|source| FetchError::Bundle {
            path: path.into(),
            source,
        })?;
        let cut_for = bundle
            .description()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok());
        Ok(Self { bundle, cut_for })
    }

    pub fn path(&self) -> &Path {
        self.bundle.path()
    }

    fn missing(&self, path: &str, entry: &FileEntry, start: u64, end: u64) -> FetchError {
        let detail = match &self.cut_for {
            Some(CutFor {
                board,
                version,
                from: Some(from),
            }) => format!(
                "the bundle holds {board} {version} only for devices running {board} {from} \
                 (their active slot holds the rest); this device's seed lacks chunks that \
                 {from} has: install {from} first, or cut a bundle with --from the version \
                 this device runs, or a full bundle (without --from)"
            ),
            _ => format!(
                "the bundle holds {} of its {} bytes in {} ranges, not these",
                entry.extents.iter().map(|e| e.len).sum::<u64>(),
                entry.len,
                entry.extents.len()
            ),
        };
        FetchError::MissingFromBundle {
            url: self.url(path),
            start,
            end,
            detail,
        }
    }
}

impl Transport for BundleTransport {
    fn open(
        &self,
        path: &str,
        start: u64,
        end: Option<u64>,
    ) -> Result<Box<dyn Read + Send>, FetchError> {
        if skerry_bundle::check_name(path).is_err() {
            return Err(FetchError::BadPath { path: path.into() });
        }
        let Some(entry) = self.bundle.toc().file(path) else {
            return Err(FetchError::NotFound {
                url: self.url(path),
            });
        };
        // Like a file: a range past its end reads what there is (the fetcher then
        // reports the file as truncated).
        let end = end.unwrap_or(entry.len).min(entry.len);
        let start = start.min(end);
        if start == end {
            return Ok(Box::new(std::io::empty()));
        }
        match entry.locate(start, end) {
            Some(at) => Ok(Box::new(self.bundle.reader(at, end - start))),
            None => Err(self.missing(path, entry, start, end)),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("bundle:{}#{path}", self.bundle.path().display())
    }

    fn check_range(&self, path: &str, start: u64, end: u64) -> Result<(), FetchError> {
        let Some(entry) = self.bundle.toc().file(path) else {
            return Err(FetchError::NotFound {
                url: self.url(path),
            });
        };
        if start < end && entry.locate(start, end).is_none() {
            return Err(self.missing(path, entry, start, end));
        }
        Ok(())
    }
}

/// The file named by a `bundle:FILE` repository URL.
pub fn bundle_path(url: &str) -> Option<PathBuf> {
    url.strip_prefix("bundle:")
        .map(|rest| PathBuf::from(rest.strip_prefix("//").unwrap_or(rest)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundle_urls_name_their_file() {
        assert_eq!(
            bundle_path("bundle:/mnt/usb/a.skb"),
            Some("/mnt/usb/a.skb".into())
        );
        assert_eq!(bundle_path("bundle:rel/a.skb"), Some("rel/a.skb".into()));
        assert_eq!(
            bundle_path("bundle:///mnt/a.skb"),
            Some("/mnt/a.skb".into())
        );
        assert_eq!(bundle_path("file:///x"), None);
    }
}
