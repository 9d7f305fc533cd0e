//! Serving repository files over HTTP: `GET`/`HEAD`, one byte range per request
//! (`206`; `416` for a range past the end or for several ranges), strong ETags (BLAKE3
//! of the bytes, computed once per file version and remembered) with `If-None-Match`
//! (`304`) and `If-Range`, and cache headers by kind of file.

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{Full, StreamBody};
use tokio_stream::StreamExt;
use tonic::body::Body;

use crate::repo_path::RepoPath;

/// Where the repository is mounted in the URL space.
pub const PREFIX: &str = "/repository/";
/// File versions whose ETag is remembered; the map starts over when full.
const ETAG_CACHE: usize = 4096;

/// The repository host.
#[derive(Debug)]
pub struct RepoHost {
    root: PathBuf,
    etags: Arc<Etags>,
}

/// Identifies one version of a file: a replaced file (rename) has a new inode, an
/// edited one a new length or modification time.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct FileVersion {
    path: PathBuf,
    dev: u64,
    ino: u64,
    len: u64,
    mtime_ns: i128,
}

/// A byte range asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeAsk {
    /// No (usable) Range header: the whole file.
    Whole,
    /// `first..=last`, within the file.
    Part { first: u64, last: u64 },
    /// Past the end, or several ranges.
    Unsatisfiable { several: bool },
}

/// Parses a `Range` header against a file of `len` bytes (RFC 9110 §14.2): a header
/// in another unit or with bad syntax is ignored (the whole file is sent).
pub fn parse_range(value: Option<&HeaderValue>, len: u64) -> RangeAsk {
    let Some(spec) = value.and_then(|v| v.to_str().ok()) else {
        return RangeAsk::Whole;
    };
    let Some(set) = spec.trim().strip_prefix("bytes=") else {
        return RangeAsk::Whole;
    };
    if set.contains(',') {
        return RangeAsk::Unsatisfiable { several: true };
    }
    let Some((a, b)) = set.trim().split_once('-') else {
        return RangeAsk::Whole;
    };
    let num = |s: &str| -> Option<u64> {
        (!s.is_empty() && s.len() <= 20 && s.bytes().all(|c| c.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    let past = RangeAsk::Unsatisfiable { several: false };
    match (a.trim(), b.trim()) {
        ("", suffix) => match num(suffix) {
            None => RangeAsk::Whole,
            Some(0) => past,
            Some(_) if len == 0 => past,
            Some(n) => RangeAsk::Part {
                first: len.saturating_sub(n),
                last: len - 1,
            },
        },
        (first, "") => match num(first) {
            None => RangeAsk::Whole,
            Some(f) if f >= len => past,
            Some(f) => RangeAsk::Part {
                first: f,
                last: len - 1,
            },
        },
        (first, last) => match (num(first), num(last)) {
            (Some(f), Some(l)) if f <= l => {
                if f >= len {
                    past
                } else {
                    RangeAsk::Part {
                        first: f,
                        last: l.min(len - 1),
                    }
                }
            }
            _ => RangeAsk::Whole,
        },
    }
}

fn text(status: StatusCode, message: &str) -> Response<Body> {
    let mut r = Response::new(Body::new(Full::new(Bytes::from(format!("{message}\n")))));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

/// Whether `If-None-Match` names `etag` (weak comparison, as RFC 9110 asks for it).
fn none_match(headers: &HeaderMap, etag: &str) -> bool {
    headers.get_all(header::IF_NONE_MATCH).iter().any(|v| {
        v.to_str().is_ok_and(|list| {
            list.split(',')
                .map(str::trim)
                .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag)
        })
    })
}

impl RepoHost {
    pub fn new(root: &Path) -> Self {
        Self {
            root: root.into(),
            etags: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Answers one request for a path under [`PREFIX`].
    pub async fn handle<B>(&self, req: &Request<B>) -> Response<Body> {
        let head = req.method() == Method::HEAD;
        if req.method() != Method::GET && !head {
            let mut r = text(
                StatusCode::METHOD_NOT_ALLOWED,
                "the repository is read-only: GET or HEAD",
            );
            r.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
            return r;
        }
        let Some(raw) = req.uri().path().strip_prefix(PREFIX) else {
            return text(StatusCode::NOT_FOUND, "not found");
        };
        let path = match RepoPath::new(raw) {
            Ok(p) => p,
            Err(e) => return text(StatusCode::BAD_REQUEST, &format!("refused path: {e}")),
        };
        let opened = match self.open(&path).await {
            Ok(o) => o,
            Err(response) => return response,
        };
        let Opened { file, len, etag } = opened;
        let cache = HeaderValue::from_static(path.cache_control());
        let etag_value = match HeaderValue::from_str(&etag) {
            Ok(v) => v,
            Err(_) => return text(StatusCode::INTERNAL_SERVER_ERROR, "bad etag"),
        };
        let mut builder = Response::builder()
            .header(header::ETAG, etag_value)
            .header(header::CACHE_CONTROL, cache)
            .header(header::ACCEPT_RANGES, "bytes");
        if none_match(req.headers(), &etag) {
            return builder
                .status(StatusCode::NOT_MODIFIED)
                .body(Body::empty())
                .unwrap_or_else(|_| text(StatusCode::INTERNAL_SERVER_ERROR, "response"));
        }
        let if_range_ok = req
            .headers()
            .get(header::IF_RANGE)
            .is_none_or(|v| v.to_str().is_ok_and(|t| t.trim() == etag));
        let range = if if_range_ok {
            parse_range(req.headers().get(header::RANGE), len)
        } else {
            RangeAsk::Whole
        };
        let (status, first, count) = match range {
            RangeAsk::Whole => (StatusCode::OK, 0, len),
            RangeAsk::Part { first, last } => {
                builder =
                    builder.header(header::CONTENT_RANGE, format!("bytes {first}-{last}/{len}"));
                (StatusCode::PARTIAL_CONTENT, first, last - first + 1)
            }
            RangeAsk::Unsatisfiable { several } => {
                let mut r = text(
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    if several {
                        "several ranges in one request are not served; ask for one range per request"
                    } else {
                        "the range starts past the end of the file"
                    },
                );
                if let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}")) {
                    r.headers_mut().insert(header::CONTENT_RANGE, v);
                }
                return r;
            }
        };
        let builder = builder
            .status(status)
            .header(header::CONTENT_TYPE, path.content_type())
            .header(header::CONTENT_LENGTH, count);
        let body = if head || count == 0 {
            Body::empty()
        } else {
            let mut file = tokio::fs::File::from_std(file);
            if let Err(e) = tokio::io::AsyncSeekExt::seek(&mut file, SeekFrom::Start(first)).await {
                return text(StatusCode::INTERNAL_SERVER_ERROR, &format!("seek: {e}"));
            }
            let reader = tokio::io::AsyncReadExt::take(file, count);
            let stream = tokio_util::io::ReaderStream::with_capacity(reader, 64 * 1024)
                .map(|chunk| chunk.map(http_body::Frame::data));
            Body::new(StreamBody::new(stream))
        };
        builder
            .body(body)
            .unwrap_or_else(|_| text(StatusCode::INTERNAL_SERVER_ERROR, "response"))
    }

    /// Opens the file, checks it is a regular file inside the repository, and names its
    /// version by ETag (hashing it the first time this version is seen).
    async fn open(&self, path: &RepoPath) -> Result<Opened, Response<Body>> {
        let root = self.root.clone();
        let rel = path.as_str().to_owned();
        let etags = Arc::clone(&self.etags);
        match tokio::task::spawn_blocking(move || open_blocking(&root, &rel, &etags)).await {
            Ok(Ok(opened)) => Ok(opened),
            Ok(Err(refusal)) => Err(refusal.response()),
            Err(_) => Err(text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the file task failed",
            )),
        }
    }
}

type Etags = Mutex<HashMap<FileVersion, String>>;

struct Opened {
    file: std::fs::File,
    len: u64,
    etag: String,
}

enum Refusal {
    Missing,
    Directory,
    Outside,
    Io(std::io::Error),
}

impl Refusal {
    fn response(self) -> Response<Body> {
        match self {
            Refusal::Missing => text(StatusCode::NOT_FOUND, "no such file in the repository"),
            Refusal::Directory => text(
                StatusCode::NOT_FOUND,
                "that is a directory, not a file; directories are not listed",
            ),
            Refusal::Outside => text(
                StatusCode::FORBIDDEN,
                "that name leads outside the repository",
            ),
            Refusal::Io(e) => text(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("reading the file: {e}"),
            ),
        }
    }
}

fn open_blocking(root: &Path, rel: &str, etags: &Etags) -> Result<Opened, Refusal> {
    use std::os::unix::fs::MetadataExt;
    let io = |e: std::io::Error| match e.kind() {
        std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory => Refusal::Missing,
        _ => Refusal::Io(e),
    };
    let real_root = root.canonicalize().map_err(Refusal::Io)?;
    let real = root.join(rel).canonicalize().map_err(io)?;
    if !real.starts_with(&real_root) {
        return Err(Refusal::Outside);
    }
    let mut file = std::fs::File::open(&real).map_err(io)?;
    let meta = file.metadata().map_err(Refusal::Io)?;
    if meta.is_dir() {
        return Err(Refusal::Directory);
    }
    if !meta.is_file() {
        return Err(Refusal::Missing);
    }
    let version = FileVersion {
        path: real,
        dev: meta.dev(),
        ino: meta.ino(),
        len: meta.len(),
        mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
    };
    let known = etags
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&version)
        .cloned();
    let etag = match known {
        Some(tag) => tag,
        None => {
            let mut hasher = blake3::Hasher::new();
            let mut buf = vec![0u8; 256 * 1024];
            let mut reader = (&mut file).take(meta.len());
            loop {
                let n = reader.read(&mut buf).map_err(Refusal::Io)?;
                if n == 0 {
                    break;
                }
                hasher.update(&buf[..n]);
            }
            file.seek(SeekFrom::Start(0)).map_err(Refusal::Io)?;
            let tag = format!("\"b3-{}\"", &hasher.finalize().to_hex()[..32]);
            let mut map = etags.lock().unwrap_or_else(|e| e.into_inner());
            if map.len() >= ETAG_CACHE {
                map.clear();
            }
            map.insert(version, tag.clone());
            tag
        }
    };
    Ok(Opened {
        file,
        len: meta.len(),
        etag,
    })
}
