//! Where repository bytes come from.
//!
//! A [`Transport`] opens a byte range of a repository file; [`Fetcher`] adds what every
//! download needs on a bad link: a size cap, counting every byte received, resuming a
//! dropped range from where it stopped, and retrying with exponential backoff.

mod file;
mod http;

use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub use file::FileTransport;
pub use http::HttpTransport;

/// Why a fetch failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{url} does not exist")]
    NotFound { url: String },
    #[error("{url} answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("{url} did not honour the range request: {reason}")]
    BadRange { url: String, reason: String },
    #[error("{url} is larger than the {max} bytes allowed")]
    TooLarge { url: String, max: u64 },
    #[error("{url} ended after {got} of {want} bytes (truncated)")]
    Truncated { url: String, got: u64, want: u64 },
    #[error("reading {url} failed")]
    Io {
        url: String,
        #[source]
        source: std::io::Error,
    },
    #[error("giving up on {url} after {attempts} failed attempts")]
    GaveUp {
        url: String,
        attempts: u32,
        #[source]
        source: Box<FetchError>,
    },
    #[error("unsupported repository URL {url} (use file://, http:// or https://)")]
    BadUrl { url: String },
    #[error("refusing repository path \"{path}\": it is not plainly inside the repository")]
    BadPath { path: String },
}

impl FetchError {
    /// Errors that retrying cannot fix.
    fn is_permanent(&self) -> bool {
        matches!(
            self,
            FetchError::NotFound { .. }
                | FetchError::TooLarge { .. }
                | FetchError::BadUrl { .. }
                | FetchError::BadPath { .. }
                | FetchError::Status {
                    status: 400..=499,
                    ..
                }
        )
    }
}

/// A repository's files, addressed by path relative to its root.
pub trait Transport: Send + Sync + std::fmt::Debug {
    /// Opens bytes `start..end` of `path` (`end = None`: to the end of the file).
    fn open(
        &self,
        path: &str,
        start: u64,
        end: Option<u64>,
    ) -> Result<Box<dyn Read + Send>, FetchError>;

    /// The full URL of `path`, for messages.
    fn url(&self, path: &str) -> String;
}

/// Opens `file://DIR` or `http(s)://HOST/PATH` as a transport.
pub fn open_url(url: &str, stall_timeout: Duration) -> Result<Arc<dyn Transport>, FetchError> {
    if let Some(dir) = url.strip_prefix("file://") {
        Ok(Arc::new(FileTransport::new(dir.into())))
    } else if url.starts_with("http://") || url.starts_with("https://") {
        Ok(Arc::new(HttpTransport::new(url, stall_timeout)))
    } else {
        Err(FetchError::BadUrl { url: url.into() })
    }
}

/// How often and how patiently to retry.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Failed attempts in a row before giving up (progress resets the count).
    pub attempts: u32,
    pub first_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 8,
            first_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    fn backoff(&self, failures: u32) -> Duration {
        let factor = 1u32 << failures.saturating_sub(1).min(16);
        self.first_backoff
            .saturating_mul(factor)
            .min(self.max_backoff)
    }
}

/// A transport with retry, resume and a byte counter.
#[derive(Debug, Clone)]
pub struct Fetcher {
    transport: Arc<dyn Transport>,
    policy: RetryPolicy,
    received: Arc<AtomicU64>,
}

impl Fetcher {
    pub fn new(transport: Arc<dyn Transport>, policy: RetryPolicy) -> Self {
        Self {
            transport,
            policy,
            received: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Every byte received so far, failed attempts included.
    pub fn bytes_received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }

    pub fn url(&self, path: &str) -> String {
        self.transport.url(path)
    }

    /// A whole file of unknown length, at most `max` bytes.
    pub fn get(&self, path: &str, max: u64) -> Result<Vec<u8>, FetchError> {
        let mut out = Vec::new();
        let mut failures = 0;
        loop {
            let result = self
                .transport
                .open(path, out.len() as u64, None)
                .and_then(|reader| self.drain(path, reader, &mut out, max));
            match result {
                Ok(()) => return Ok(out),
                Err(e) => failures = self.after_failure(path, e, failures)?,
            }
        }
    }

    /// Exactly bytes `start..start + len` of `path`.
    pub fn get_range(&self, path: &str, start: u64, len: u64) -> Result<Vec<u8>, FetchError> {
        let mut out = Vec::with_capacity(len as usize);
        self.stream(path, start, len)
            .read_to_end(&mut out)
            .map_err(|e| {
                match e
                    .into_inner()
                    .and_then(|inner| inner.downcast::<FetchError>().ok())
                {
                    Some(fetch) => *fetch,
                    None => FetchError::Truncated {
                        url: self.url(path),
                        got: out.len() as u64,
                        want: len,
                    },
                }
            })?;
        Ok(out)
    }

    /// A reader over bytes `start..start + len` of `path` that resumes after failures.
    /// Its I/O errors wrap a [`FetchError`].
    pub fn stream(&self, path: &str, start: u64, len: u64) -> RangeStream {
        RangeStream {
            fetcher: self.clone(),
            path: path.into(),
            pos: start,
            end: start + len,
            inner: None,
            failures: 0,
        }
    }

    fn drain(
        &self,
        path: &str,
        mut reader: Box<dyn Read + Send>,
        out: &mut Vec<u8>,
        max: u64,
    ) -> Result<(), FetchError> {
        let mut buf = [0u8; 16 * 1024];
        loop {
            let n = reader.read(&mut buf).map_err(|source| FetchError::Io {
                url: self.url(path),
                source,
            })?;
            if n == 0 {
                return Ok(());
            }
            self.received.fetch_add(n as u64, Ordering::Relaxed);
            if out.len() as u64 + n as u64 > max {
                return Err(FetchError::TooLarge {
                    url: self.url(path),
                    max,
                });
            }
            out.extend_from_slice(&buf[..n]);
        }
    }

    /// Sleeps before the next attempt, or returns the error when it is final.
    fn after_failure(&self, path: &str, err: FetchError, failures: u32) -> Result<u32, FetchError> {
        if err.is_permanent() {
            return Err(err);
        }
        let failures = failures + 1;
        if failures >= self.policy.attempts {
            return Err(FetchError::GaveUp {
                url: self.url(path),
                attempts: failures,
                source: Box::new(err),
            });
        }
        std::thread::sleep(self.policy.backoff(failures));
        Ok(failures)
    }
}

/// A byte range that reconnects from where it stopped when the connection drops.
pub struct RangeStream {
    fetcher: Fetcher,
    path: String,
    pos: u64,
    end: u64,
    inner: Option<Box<dyn Read + Send>>,
    failures: u32,
}

impl std::fmt::Debug for RangeStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RangeStream")
            .field("path", &self.path)
            .field("pos", &self.pos)
            .field("end", &self.end)
            .finish_non_exhaustive()
    }
}

impl Read for RangeStream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.pos >= self.end || buf.is_empty() {
            return Ok(0);
        }
        loop {
            let attempt = match self.inner.as_mut() {
                Some(reader) => {
                    let want = buf.len().min((self.end - self.pos) as usize);
                    match reader.read(&mut buf[..want]) {
                        Ok(0) => Err(FetchError::Truncated {
                            url: self.fetcher.url(&self.path),
                            got: self.pos,
                            want: self.end,
                        }),
                        Ok(n) => Ok(n),
                        Err(source) => Err(FetchError::Io {
                            url: self.fetcher.url(&self.path),
                            source,
                        }),
                    }
                }
                None => match self
                    .fetcher
                    .transport
                    .open(&self.path, self.pos, Some(self.end))
                {
                    Ok(reader) => {
                        self.inner = Some(reader);
                        continue;
                    }
                    Err(e) => Err(e),
                },
            };
            match attempt {
                Ok(n) => {
                    self.pos += n as u64;
                    self.failures = 0;
                    self.fetcher.received.fetch_add(n as u64, Ordering::Relaxed);
                    return Ok(n);
                }
                Err(e) => {
                    self.inner = None;
                    self.failures = self
                        .fetcher
                        .after_failure(&self.path, e, self.failures)
                        .map_err(std::io::Error::other)?;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_caps() {
        let p = RetryPolicy {
            attempts: 5,
            first_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(35),
        };
        assert_eq!(p.backoff(1), Duration::from_millis(10));
        assert_eq!(p.backoff(2), Duration::from_millis(20));
        assert_eq!(p.backoff(3), Duration::from_millis(35));
    }
}
