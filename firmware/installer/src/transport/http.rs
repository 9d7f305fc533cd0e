//! `http(s)://` repositories: any static server or CDN. Range requests are used and
//! checked (`206` with the right `Content-Range`); a server that ignores them and sends
//! the whole file (`200`) still works, at the cost of the skipped bytes, which are
//! counted, and the transport remembers it so the installer fetches the pack in one
//! pass instead of once per range. `408`, `429` and `503` are [`FetchError::Busy`],
//! retried after the server's `Retry-After` (seconds).

use std::io::Read;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::{FetchError, Transport};

/// Reads repository files over HTTP with a blocking client (small, no async runtime).
#[derive(Debug)]
pub struct HttpTransport {
    base: String,
    agent: ureq::Agent,
    ranges_ignored: AtomicBool,
    discarded: Arc<AtomicU64>,
}

impl HttpTransport {
    /// `stall_timeout` bounds how long one read may wait for bytes before the
    /// connection is dropped and resumed.
    pub fn new(base: &str, stall_timeout: Duration) -> Self {
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(15))
            .timeout_read(stall_timeout)
            .timeout_write(stall_timeout)
            .build();
        Self {
            base: base.trim_end_matches('/').to_string(),
            agent,
            ranges_ignored: AtomicBool::new(false),
            discarded: Arc::new(AtomicU64::new(0)),
        }
    }
}

impl Transport for HttpTransport {
    fn open(
        &self,
        path: &str,
        start: u64,
        end: Option<u64>,
    ) -> Result<Box<dyn Read + Send>, FetchError> {
        let url = self.url(path);
        let ranged = start > 0 || end.is_some();
        let mut request = self.agent.get(&url);
        if ranged {
            let range = match end {
                Some(end) if end <= start => return Ok(Box::new(std::io::empty())),
                Some(end) => format!("bytes={start}-{}", end - 1),
                None => format!("bytes={start}-"),
            };
            request = request.set("Range", &range);
        }
        let response = match request.call() {
            Ok(r) => r,
            Err(ureq::Error::Status(404, _)) => return Err(FetchError::NotFound { url }),
            Err(ureq::Error::Status(status @ (408 | 429 | 503), response)) => {
                let retry_after = response
                    .header("Retry-After")
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(Duration::from_secs);
                return Err(FetchError::Busy {
                    url,
                    status,
                    retry_after,
                });
            }
            Err(ureq::Error::Status(status, _)) => return Err(FetchError::Status { url, status }),
            Err(ureq::Error::Transport(t)) => {
                return Err(FetchError::Io {
                    url,
                    source: std::io::Error::other(t.to_string()),
                })
            }
        };
        let status = response.status();
        if ranged && status == 206 {
            let content_range = response.header("Content-Range").unwrap_or("");
            let first = content_range
                .strip_prefix("bytes ")
                .and_then(|r| r.split('-').next())
                .and_then(|s| s.parse::<u64>().ok());
            if first != Some(start) {
                return Err(FetchError::BadRange {
                    url,
                    reason: format!("Content-Range \"{content_range}\" does not start at {start}"),
                });
            }
        } else if status != 200 {
            return Err(FetchError::Status { url, status });
        }
        let mut reader = response.into_reader();
        if ranged && status == 200 {
            self.ranges_ignored.store(true, Ordering::Relaxed);
        }
        if ranged && status == 200 && start > 0 {
            // A server without range support sent the whole file: skip to `start`. It
            // costs bytes, not correctness (every chunk is still verified).
            let mut counted = Counted {
                inner: (&mut reader).take(start),
                count: &self.discarded,
            };
            let skipped = std::io::copy(&mut counted, &mut std::io::sink()).map_err(|source| {
                FetchError::Io {
                    url: url.clone(),
                    source,
                }
            })?;
            if skipped < start {
                return Err(FetchError::Truncated {
                    url,
                    got: skipped,
                    want: start,
                });
            }
        }
        Ok(match end {
            Some(end) => Box::new(reader.take(end - start)),
            None => reader,
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}/{}", self.base, path)
    }

    fn ignores_ranges(&self) -> bool {
        self.ranges_ignored.load(Ordering::Relaxed)
    }

    fn bytes_discarded(&self) -> u64 {
        self.discarded.load(Ordering::Relaxed)
    }
}

/// Counts the bytes read through it.
struct Counted<'a, R> {
    inner: R,
    count: &'a AtomicU64,
}

impl<R: Read> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}
