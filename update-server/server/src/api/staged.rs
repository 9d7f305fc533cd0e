//! Uploads being staged for a push: `DIR/uploads/ID/files/<repository path>`, outside
//! the served repository (same filesystem, so publishing is a rename). A file's body
//! streams to `DIR/uploads/ID/partial`, bounded as it arrives, and is fsynced and renamed
//! to its place only when complete, so the listing an interrupted client resumes from
//! holds whole files only.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use http_body::Body as _;
use http_body_util::BodyExt;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use crate::repo_path::RepoPath;
use skerry_tuf::limits;

/// The most bytes of one uploaded target file.
pub const MAX_TARGET_BYTES: u64 = 8 * 1024 * 1024 * 1024;
/// The most bytes of one whole upload.
pub const MAX_UPLOAD_BYTES: u64 = 16 * 1024 * 1024 * 1024;
/// The most files in one upload.
pub const MAX_UPLOAD_FILES: usize = 4096;
/// The most uploads open at once.
pub const MAX_OPEN_UPLOADS: usize = 8;
/// An upload untouched this long is removed when a new one starts.
pub const STALE_AFTER: Duration = Duration::from_secs(86_400);

/// A metadata file an upload may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetadataName {
    Root(u64),
    Targets(u64),
    Snapshot(u64),
    Timestamp,
}

impl MetadataName {
    /// `timestamp.json` or `N.root.json`, `N.targets.json`, `N.snapshot.json` (N ≥ 1).
    pub fn parse(name: &str) -> Option<Self> {
        if name == "timestamp.json" {
            return Some(Self::Timestamp);
        }
        let (n, kind) = name.strip_suffix(".json")?.split_once('.')?;
        if n.is_empty()
            || n.len() > 19
            || !n.bytes().all(|b| b.is_ascii_digit())
            || n.starts_with('0')
        {
            return None;
        }
        let v: u64 = n.parse().ok()?;
        match kind {
            "root" => Some(Self::Root(v)),
            "targets" => Some(Self::Targets(v)),
            "snapshot" => Some(Self::Snapshot(v)),
            _ => None,
        }
    }

    /// The most bytes such a file may have (the limits devices apply).
    pub fn limit(self) -> u64 {
        match self {
            Self::Root(_) => limits::MAX_ROOT_LEN,
            Self::Targets(_) => limits::MAX_TARGETS_LEN,
            Self::Snapshot(_) => limits::MAX_SNAPSHOT_LEN,
            Self::Timestamp => limits::MAX_TIMESTAMP_LEN,
        }
    }
}

/// One complete staged file.
#[derive(Debug, Clone)]
pub struct StagedFile {
    pub path: PathBuf,
    pub length: u64,
    pub metadata: Option<MetadataName>,
}

/// Why a staging step was refused; `status` is the HTTP answer.
#[derive(Debug)]
pub struct StageError {
    pub status: http::StatusCode,
    pub message: String,
}

fn refuse(status: http::StatusCode, message: impl Into<String>) -> StageError {
    StageError {
        status,
        message: message.into(),
    }
}

fn internal(what: &Path) -> impl FnOnce(std::io::Error) -> StageError + '_ {
    move |e| {
        refuse(
            http::StatusCode::INTERNAL_SERVER_ERROR,
            format!("{}: {e}", what.display()),
        )
    }
}

/// A checked path for an uploaded file, with the most bytes it may have.
pub fn check_upload_path(raw: &str) -> Result<(RepoPath, Option<MetadataName>, u64), StageError> {
    let bad = |m: String| refuse(http::StatusCode::BAD_REQUEST, m);
    let path = RepoPath::new(raw).map_err(|e| bad(format!("upload path {raw:?}: {e}")))?;
    if let Some(name) = raw.strip_prefix("metadata/") {
        let meta = MetadataName::parse(name).ok_or_else(|| {
            bad(format!(
                "upload path {raw:?}: metadata/ takes N.root.json, N.targets.json, N.snapshot.json or timestamp.json"
            ))
        })?;
        return Ok((path, Some(meta), meta.limit()));
    }
    Ok((path, None, MAX_TARGET_BYTES))
}

/// The uploads directory and which uploads are busy (one request at a time each).
#[derive(Debug)]
pub struct Uploads {
    dir: PathBuf,
    busy: Mutex<HashSet<String>>,
}

/// Holds an upload busy until dropped.
#[derive(Debug)]
pub struct Busy<'a> {
    uploads: &'a Uploads,
    id: String,
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        if let Ok(mut b) = self.uploads.busy.lock() {
            b.remove(&self.id);
        }
    }
}

impl Uploads {
    pub fn new(dir: PathBuf) -> Self {
        Self {
            dir,
            busy: Mutex::new(HashSet::new()),
        }
    }

    fn root(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    /// The directory holding an upload's complete files.
    pub fn files_dir(&self, id: &str) -> PathBuf {
        self.root(id).join("files")
    }

    /// Marks `id` busy, or refuses if it is unknown or in use.
    pub fn take(&self, id: &str) -> Result<Busy<'_>, StageError> {
        check_upload_id(id)?;
        if !self.root(id).is_dir() {
            return Err(refuse(
                http::StatusCode::NOT_FOUND,
                format!("no upload {id:?} (it was published, aborted or never started)"),
            ));
        }
        let mut busy = self.busy.lock().map_err(|_| {
            refuse(
                http::StatusCode::INTERNAL_SERVER_ERROR,
                "upload table poisoned",
            )
        })?;
        if !busy.insert(id.to_string()) {
            return Err(refuse(
                http::StatusCode::CONFLICT,
                format!("upload {id:?} is busy with another request; send one at a time"),
            ));
        }
        Ok(Busy {
            uploads: self,
            id: id.into(),
        })
    }

    /// Starts an upload, first removing stale ones; refuses past [`MAX_OPEN_UPLOADS`].
    pub fn create(&self, now: SystemTime) -> Result<String, StageError> {
        std::fs::create_dir_all(&self.dir).map_err(internal(&self.dir))?;
        let mut open = 0;
        for entry in std::fs::read_dir(&self.dir)
            .map_err(internal(&self.dir))?
            .flatten()
        {
            let stale = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| now.duration_since(t).ok())
                .is_some_and(|age| age > STALE_AFTER);
            let id = entry.file_name().to_string_lossy().into_owned();
            if stale {
                if let Ok(_held) = self.take(&id) {
                    let _ = std::fs::remove_dir_all(entry.path());
                    continue;
                }
            }
            open += 1;
        }
        if open >= MAX_OPEN_UPLOADS {
            return Err(refuse(
                http::StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "{open} uploads are open (at most {MAX_OPEN_UPLOADS}); publish or abort one"
                ),
            ));
        }
        let mut raw = [0u8; 16];
        getrandom::getrandom(&mut raw).map_err(|e| {
            refuse(
                http::StatusCode::INTERNAL_SERVER_ERROR,
                format!("no random source: {e}"),
            )
        })?;
        let id = hex::encode(raw);
        let files = self.files_dir(&id);
        std::fs::create_dir_all(&files).map_err(internal(&files))?;
        Ok(id)
    }

    /// Removes an upload (the caller holds it busy).
    pub fn remove(&self, busy: &Busy<'_>) -> Result<(), StageError> {
        let root = self.root(&busy.id);
        std::fs::remove_dir_all(&root).map_err(internal(&root))
    }

    /// The upload's complete files by repository path, bounded by [`MAX_UPLOAD_FILES`].
    pub fn inventory(&self, busy: &Busy<'_>) -> Result<BTreeMap<String, StagedFile>, StageError> {
        let base = self.files_dir(&busy.id);
        let mut out = BTreeMap::new();
        let mut stack = vec![(base.clone(), 0usize)];
        while let Some((dir, depth)) = stack.pop() {
            for entry in std::fs::read_dir(&dir).map_err(internal(&dir))?.flatten() {
                let path = entry.path();
                let kind = entry.file_type().map_err(internal(&path))?;
                if kind.is_dir() && depth < crate::repo_path::MAX_SEGMENTS {
                    stack.push((path, depth + 1));
                } else if kind.is_file() {
                    let rel = path
                        .strip_prefix(&base)
                        .map(|p| p.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    let (_, metadata, _) = check_upload_path(&rel)?;
                    let length = entry.metadata().map_err(internal(&path))?.len();
                    out.insert(
                        rel,
                        StagedFile {
                            path,
                            length,
                            metadata,
                        },
                    );
                    if out.len() > MAX_UPLOAD_FILES {
                        return Err(refuse(
                            http::StatusCode::PAYLOAD_TOO_LARGE,
                            format!("the upload holds more than {MAX_UPLOAD_FILES} files"),
                        ));
                    }
                }
            }
        }
        Ok(out)
    }

    /// Streams `body` into the upload as `raw` (a repository path), never holding more
    /// than one frame in memory; refuses with 413 past the file's or the upload's bound.
    pub async fn put(
        &self,
        busy: &Busy<'_>,
        raw: &str,
        declared: Option<u64>,
        mut body: tonic::body::Body,
    ) -> Result<(u64, [u8; 32]), StageError> {
        let (path, _, limit) = check_upload_path(raw)?;
        let have = self.inventory(busy)?;
        let others: u64 = have
            .iter()
            .filter(|(k, _)| k.as_str() != path.as_str())
            .map(|(_, f)| f.length)
            .sum();
        if have.len() >= MAX_UPLOAD_FILES && !have.contains_key(path.as_str()) {
            return Err(refuse(
                http::StatusCode::PAYLOAD_TOO_LARGE,
                format!("an upload holds at most {MAX_UPLOAD_FILES} files"),
            ));
        }
        let limit = limit.min(MAX_UPLOAD_BYTES.saturating_sub(others));
        let too_large = || {
            refuse(
                http::StatusCode::PAYLOAD_TOO_LARGE,
                format!("{raw} is over its limit of {limit} bytes (per file: metadata as devices bound it, targets {MAX_TARGET_BYTES}; per upload {MAX_UPLOAD_BYTES})"),
            )
        };
        if declared.is_some_and(|n| n > limit) {
            return Err(too_large());
        }
        let partial = self.root(&busy.id).join("partial");
        let mut file = tokio::fs::File::create(&partial)
            .await
            .map_err(internal(&partial))?;
        let mut hasher = Sha256::new();
        let mut written: u64 = 0;
        let outcome: Result<(), StageError> = async {
            while let Some(frame) = body.frame().await {
                let frame = frame.map_err(|e| {
                    refuse(
                        http::StatusCode::BAD_REQUEST,
                        format!("the upload of {raw} broke off: {e}"),
                    )
                })?;
                let Ok(data) = frame.into_data() else {
                    continue;
                };
                written += data.len() as u64;
                if written > limit {
                    return Err(too_large());
                }
                hasher.update(&data);
                file.write_all(&data).await.map_err(internal(&partial))?;
            }
            if declared.is_some_and(|n| n != written) {
                return Err(refuse(
                    http::StatusCode::BAD_REQUEST,
                    format!(
                        "{raw}: {written} bytes arrived, the request declared {}",
                        declared.unwrap_or(0)
                    ),
                ));
            }
            file.sync_all().await.map_err(internal(&partial))?;
            Ok(())
        }
        .await;
        drop(file);
        if let Err(e) = outcome {
            let _ = std::fs::remove_file(&partial);
            return Err(e);
        }
        let to = self.files_dir(&busy.id).join(path.as_str());
        let dir = to.parent().unwrap_or(&partial).to_path_buf();
        std::fs::create_dir_all(&dir).map_err(internal(&dir))?;
        std::fs::rename(&partial, &to).map_err(internal(&to))?;
        std::fs::File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(internal(&dir))?;
        let _ = body.is_end_stream();
        Ok((written, hasher.finalize().into()))
    }
}

/// An upload id: 32 lowercase hex digits, as [`Uploads::create`] makes them.
pub fn check_upload_id(id: &str) -> Result<(), StageError> {
    if id.len() == 32
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        Ok(())
    } else {
        Err(refuse(
            http::StatusCode::BAD_REQUEST,
            format!("upload id {id:?}: give the 32 hex digits the upload was created with"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_repository_metadata_names_and_confined_paths_are_accepted() {
        assert_eq!(
            MetadataName::parse("3.root.json"),
            Some(MetadataName::Root(3))
        );
        assert_eq!(
            MetadataName::parse("timestamp.json"),
            Some(MetadataName::Timestamp)
        );
        for bad in [
            "0.root.json",
            "01.root.json",
            "x.root.json",
            "3.keys.json",
            "root.json",
            "3.root.json.tmp",
        ] {
            assert_eq!(MetadataName::parse(bad), None, "{bad}");
        }
        for bad in [
            "targets/../x",
            "metadata/../../etc/passwd",
            "/abs",
            "targets/a//b",
            "keys/timestamp.key",
            "metadata/3.root.jsonx",
            "targets/%2e%2e/x",
        ] {
            assert!(check_upload_path(bad).is_err(), "{bad}");
        }
        assert!(check_upload_path("targets/pi/1.0.0/ab.image.pack").is_ok());
        assert!(check_upload_id("../../x").is_err());
    }
}
