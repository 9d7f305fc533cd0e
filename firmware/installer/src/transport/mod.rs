//! Where repository bytes come from.
//!
//! A [`Transport`] opens a byte range of a repository file; [`Fetcher`] adds what every
//! download needs on a bad link: a size cap, counting every byte received (bytes a
//! server without range support made us skip included), resuming a dropped range from
//! where it stopped, and retrying with exponential backoff — or after the server's
//! `Retry-After` when it answered 408, 429 or 503 (bounded by the longest backoff).
//! Whole files (metadata) are never resumed: a retry starts over, so a file replaced
//! on the server between two attempts is never spliced from two versions.

mod bundle;
mod file;
mod http;
pub mod pace;

use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub use bundle::BundleTransport;
pub use file::FileTransport;
pub use http::HttpTransport;
pub use pace::{Clock, MinProgress, SystemClock};

use pace::Pace;

/// Why a fetch failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{url} does not exist")]
    NotFound { url: String },
    #[error("{url} answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("{url} is busy (HTTP {status}){}", retry_after.map(|d| format!(", retry after {}s", d.as_secs())).unwrap_or_default())]
    Busy {
        url: String,
        status: u16,
        /// The server's `Retry-After`, in seconds.
        retry_after: Option<Duration>,
    },
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
    #[error("{url} delivered {bytes} bytes in {seconds}s of waiting on the network, less than the minimum progress ({min_bytes_per_sec} bytes/s)")]
    TooSlow {
        url: String,
        bytes: u64,
        seconds: u64,
        min_bytes_per_sec: u64,
    },
    #[error("giving up on {url} after {attempts} failed attempts")]
    GaveUp {
        url: String,
        attempts: u32,
        #[source]
        source: Box<FetchError>,
    },
    #[error("unsupported repository URL {url} (use file://, http://, https:// or bundle:FILE)")]
    BadUrl { url: String },
    #[error("bundle {} is refused", path.display())]
    Bundle {
        path: std::path::PathBuf,
        #[source]
        source: skerry_bundle::BundleError,
    },
    #[error("{url} is not in the bundle (bytes {start}..{end}): {detail}")]
    MissingFromBundle {
        url: String,
        start: u64,
        end: u64,
        detail: String,
    },
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
                | FetchError::TooSlow { .. }
                | FetchError::BadUrl { .. }
                | FetchError::Bundle { .. }
                | FetchError::MissingFromBundle { .. }
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

    /// Whether the server was seen answering a range request with the whole file.
    fn ignores_ranges(&self) -> bool {
        false
    }

    /// Bytes received and thrown away (a whole file sent for a range request).
    fn bytes_discarded(&self) -> u64 {
        0
    }

    /// Fails when the transport knows, without reading, that it cannot deliver bytes
    /// `start..end` of `path` (an offline bundle cut for another base), so an install
    /// is refused before the slot is touched. A server cannot know: `Ok`.
    fn check_range(&self, _path: &str, _start: u64, _end: u64) -> Result<(), FetchError> {
        Ok(())
    }
}

/// Opens `file://DIR`, `http(s)://HOST/PATH` or `bundle:FILE` (an offline bundle) as a
/// transport.
pub fn open_url(url: &str, stall_timeout: Duration) -> Result<Arc<dyn Transport>, FetchError> {
    if let Some(path) = bundle::bundle_path(url) {
        Ok(Arc::new(BundleTransport::open(&path)?))
    } else if let Some(dir) = url.strip_prefix("file://") {
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

    /// The wait before the next attempt: the server's `Retry-After` when it gave one
    /// (never longer than the longest backoff), else the exponential backoff.
    fn delay(&self, failures: u32, err: &FetchError) -> Duration {
        match err {
            FetchError::Busy {
                retry_after: Some(after),
                ..
            } => (*after).min(self.max_backoff),
            _ => self.backoff(failures),
        }
    }
}

/// Where each retry is reported, with its reason (the CLI prints it on stderr; the
/// daemon logs it). `RetryLog::default()` reports nothing.
#[derive(Clone, Default)]
pub struct RetryLog(Option<Arc<LogFn>>);

type LogFn = dyn Fn(&str) + Send + Sync;

impl RetryLog {
    pub fn new(log: impl Fn(&str) + Send + Sync + 'static) -> Self {
        Self(Some(Arc::new(log)))
    }

    fn report(&self, message: &str) {
        if let Some(log) = &self.0 {
            log(message);
        }
    }
}

impl std::fmt::Debug for RetryLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "RetryLog(on)"
        } else {
            "RetryLog(off)"
        })
    }
}

/// A transport with retry, resume and a byte counter.
#[derive(Debug, Clone)]
pub struct Fetcher {
    transport: Arc<dyn Transport>,
    policy: RetryPolicy,
    received: Arc<AtomicU64>,
    log: RetryLog,
    clock: Arc<dyn Clock>,
    pace: Arc<Pace>,
    rule: MinProgress,
}

impl Fetcher {
    pub fn new(transport: Arc<dyn Transport>, policy: RetryPolicy) -> Self {
        Self {
            transport,
            policy,
            received: Arc::new(AtomicU64::new(0)),
            log: RetryLog::default(),
            clock: Arc::new(SystemClock),
            pace: Arc::new(Pace::new(MinProgress::default())),
            rule: MinProgress::default(),
        }
    }

    /// Fails every download once less than `rule` arrives (see [`pace`]).
    pub fn with_min_progress(mut self, rule: MinProgress) -> Self {
        self.rule = rule;
        self.pace = Arc::new(Pace::new(rule));
        self
    }

    /// Measures network time and waits between retries on `clock` (tests inject one).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Runs `f`, returning its result and the time it took on the fetcher's clock.
    fn timed<T>(&self, f: impl FnOnce() -> T) -> (T, Duration) {
        let started = self.clock.now();
        let out = f();
        (out, self.clock.now().saturating_duration_since(started))
    }

    /// Records `bytes` received after `waited` on the network, against the rule.
    fn paced(&self, path: &str, waited: Duration, bytes: u64) -> Result<(), FetchError> {
        self.pace
            .record(waited, bytes)
            .map_err(|slow| FetchError::TooSlow {
                url: self.url(path),
                bytes: slow.bytes,
                seconds: slow.window.as_secs(),
                min_bytes_per_sec: self.rule.bytes_per_sec,
            })
    }

    /// Reports every retry, with its reason, to `log`.
    pub fn with_retry_log(mut self, log: RetryLog) -> Self {
        self.log = log;
        self
    }

    /// Every byte received so far, failed attempts and skipped bytes included.
    pub fn bytes_received(&self) -> u64 {
        self.received.load(Ordering::Relaxed) + self.transport.bytes_discarded()
    }

    /// Whether the server answered a range request with the whole file.
    pub fn ranges_ignored(&self) -> bool {
        self.transport.ignores_ranges()
    }

    pub fn url(&self, path: &str) -> String {
        self.transport.url(path)
    }

    /// A whole file of unknown length, at most `max` bytes. A failed attempt starts
    /// over: the file may have been replaced meanwhile (metadata is), and resuming
    /// would splice two versions into one file.
    pub fn get(&self, path: &str, max: u64) -> Result<Vec<u8>, FetchError> {
        let mut out = Vec::new();
        let mut failures = 0;
        loop {
            out.clear();
            let (opened, waited) = self.timed(|| self.transport.open(path, 0, None));
            let result = self
                .paced(path, waited, 0)
                .and(opened)
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
            let (read, waited) = self.timed(|| reader.read(&mut buf));
            let n = read.map_err(|source| FetchError::Io {
                url: self.url(path),
                source,
            })?;
            self.paced(path, waited, n as u64)?;
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
        let delay = self.policy.delay(failures, &err);
        self.log.report(&format!(
            "retrying {} in {:.1}s (attempt {} of {}): {}",
            self.url(path),
            delay.as_secs_f64(),
            failures + 1,
            self.policy.attempts,
            chain(&err)
        ));
        self.clock.sleep(delay);
        self.paced(path, delay, 0)?;
        Ok(failures)
    }
}

/// `err` and its sources, as one line.
fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        text += &format!(": {s}");
        source = s.source();
    }
    text
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
            let started = self.fetcher.clock.now();
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
            let waited = self.fetcher.clock.now().saturating_duration_since(started);
            let bytes = *attempt.as_ref().unwrap_or(&0) as u64;
            self.fetcher
                .paced(&self.path, waited, bytes)
                .map_err(std::io::Error::other)?;
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

    #[test]
    fn retry_after_is_honoured_up_to_the_longest_backoff() {
        let p = RetryPolicy {
            attempts: 5,
            first_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_secs(30),
        };
        let busy = |secs| FetchError::Busy {
            url: "u".into(),
            status: 503,
            retry_after: Some(Duration::from_secs(secs)),
        };
        assert_eq!(p.delay(1, &busy(7)), Duration::from_secs(7));
        assert_eq!(p.delay(1, &busy(3600)), Duration::from_secs(30));
        let plain = FetchError::Busy {
            url: "u".into(),
            status: 429,
            retry_after: None,
        };
        assert_eq!(p.delay(2, &plain), Duration::from_millis(20));
    }

    /// Serves version 1 of a file, dropping the connection after 10 bytes, then (the
    /// file was replaced meanwhile) version 2 whole.
    #[derive(Debug, Default)]
    struct Replaced {
        opens: AtomicU64,
    }

    impl Transport for Replaced {
        fn open(
            &self,
            _: &str,
            start: u64,
            _: Option<u64>,
        ) -> Result<Box<dyn Read + Send>, FetchError> {
            let n = self.opens.fetch_add(1, Ordering::SeqCst);
            let body: &[u8] = if n == 0 {
                b"version 1 of the file"
            } else {
                b"VERSION 2 OF THE FILE, longer"
            };
            let body = std::io::Cursor::new(body[start as usize..].to_vec());
            Ok(if n == 0 {
                Box::new(body.take(10).chain(Failing))
            } else {
                Box::new(body)
            })
        }

        fn url(&self, path: &str) -> String {
            path.into()
        }
    }

    /// A connection that drops (after the bytes before it in a chain).
    struct Failing;

    impl Read for Failing {
        fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
            Err(std::io::Error::other("connection reset"))
        }
    }

    #[test]
    fn a_whole_file_is_never_spliced_from_two_versions() {
        let fetcher = Fetcher::new(
            Arc::new(Replaced::default()),
            RetryPolicy {
                attempts: 3,
                first_backoff: Duration::from_millis(1),
                max_backoff: Duration::from_millis(1),
            },
        );
        let got = fetcher.get("timestamp.json", 1000).unwrap();
        assert_eq!(got, b"VERSION 2 OF THE FILE, longer");
    }
}
