//! The minimum-progress rule on an injected clock (no real waiting): a trickle, or a
//! server that drops every connection after one byte (each byte resets the retry count),
//! fails once a window of network time delivered too little; a slow but steady link
//! within the rule completes. Every retry is reported with its reason.

use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use skerry_installer::transport::{Clock, MinProgress};
use skerry_installer::{FetchError, Fetcher, RetryLog, RetryPolicy, Transport};

/// A clock that moves only when the test's transport or a retry wait moves it.
#[derive(Debug)]
struct ManualClock {
    start: Instant,
    elapsed_ms: AtomicU64,
}

impl ManualClock {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            start: Instant::now(),
            elapsed_ms: AtomicU64::new(0),
        })
    }

    fn advance(&self, d: Duration) {
        self.elapsed_ms
            .fetch_add(d.as_millis() as u64, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        self.start + Duration::from_millis(self.elapsed_ms.load(Ordering::SeqCst))
    }

    fn sleep(&self, d: Duration) {
        self.advance(d);
    }
}

/// A file of `len` bytes delivered `per_second` bytes per (clock) second; with `drop`,
/// every connection fails after its first read.
#[derive(Debug)]
struct SlowLink {
    clock: Arc<ManualClock>,
    len: u64,
    per_second: usize,
    drop: bool,
}

struct SlowReader {
    clock: Arc<ManualClock>,
    left: u64,
    per_second: usize,
    drop: bool,
    reads: u32,
}

impl Read for SlowReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.drop && self.reads > 0 {
            return Err(std::io::Error::other("connection reset by peer"));
        }
        self.reads += 1;
        self.clock.advance(Duration::from_secs(1));
        let n = buf.len().min(self.per_second).min(self.left as usize);
        buf[..n].fill(b'x');
        self.left -= n as u64;
        Ok(n)
    }
}

impl Transport for SlowLink {
    fn open(
        &self,
        _: &str,
        start: u64,
        end: Option<u64>,
    ) -> Result<Box<dyn Read + Send>, FetchError> {
        let end = end.unwrap_or(self.len).min(self.len);
        Ok(Box::new(SlowReader {
            clock: self.clock.clone(),
            left: end.saturating_sub(start),
            per_second: self.per_second,
            drop: self.drop,
            reads: 0,
        }))
    }

    fn url(&self, path: &str) -> String {
        format!("slow://{path}")
    }
}

const RULE: MinProgress = MinProgress {
    bytes_per_sec: 100,
    window: Duration::from_secs(60),
};

fn fetcher(link: SlowLink, clock: Arc<ManualClock>) -> Fetcher {
    let policy = RetryPolicy {
        attempts: 5,
        first_backoff: Duration::from_millis(500),
        max_backoff: Duration::from_secs(2),
    };
    Fetcher::new(Arc::new(link), policy)
        .with_clock(clock)
        .with_min_progress(RULE)
}

#[test]
fn a_trickle_fails_after_a_window_of_too_little() {
    let clock = ManualClock::new();
    let link = SlowLink {
        clock: clock.clone(),
        len: 1 << 20,
        per_second: 10,
        drop: false,
    };
    let err = fetcher(link, clock.clone())
        .get_range("image.pack", 0, 1 << 20)
        .unwrap_err();
    assert!(matches!(err, FetchError::TooSlow { .. }), "{err}");
    let waited = clock.now() - clock.start;
    assert!(waited <= Duration::from_secs(61), "{waited:?}");
}

#[test]
fn a_server_dropping_every_connection_after_a_byte_is_given_up() {
    let clock = ManualClock::new();
    let link = SlowLink {
        clock: clock.clone(),
        len: 1 << 20,
        per_second: 1,
        drop: true,
    };
    let retries = Arc::new(Mutex::new(Vec::<String>::new()));
    let log = retries.clone();
    let err = fetcher(link, clock.clone())
        .with_retry_log(RetryLog::new(move |m| log.lock().unwrap().push(m.into())))
        .get_range("image.pack", 0, 1 << 20)
        .unwrap_err();
    assert!(matches!(err, FetchError::TooSlow { .. }), "{err}");
    let retries = retries.lock().unwrap();
    assert!(retries.len() > 5, "each byte reset the retry count");
    assert!(
        retries[0].contains("slow://image.pack") && retries[0].contains("connection reset"),
        "{}",
        retries[0]
    );
}

#[test]
fn a_slow_steady_link_within_the_rule_completes() {
    let clock = ManualClock::new();
    let link = SlowLink {
        clock: clock.clone(),
        len: 50_000,
        per_second: 150,
        drop: false,
    };
    let got = fetcher(link, clock.clone())
        .get_range("image.pack", 0, 50_000)
        .unwrap();
    assert_eq!(got.len(), 50_000);
    // And metadata (whole files) follow the same rule.
    let link = SlowLink {
        clock: clock.clone(),
        len: 20_000,
        per_second: 150,
        drop: false,
    };
    assert_eq!(
        fetcher(link, clock)
            .get("timestamp.json", 1 << 20)
            .unwrap()
            .len(),
        20_000
    );
}
