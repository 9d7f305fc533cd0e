//! The board's side: [`SimulatedWatchdogDevice`] listens on the socket in a thread of
//! its own (in the test's or the harness's process, never the daemon's), records every
//! request and fires when an armed countdown runs out.

use std::io;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::{Request, MAX_DATAGRAM};

/// At most this many feed instants (and as many arms, closes and fires) are kept; the
/// counts go on past it.
pub const DEVICE_FEED_LOG_LIMIT: usize = 100_000;

/// How often the device looks at its stop flag while nothing is armed.
const POLL: Duration = Duration::from_millis(20);

/// What the device saw, as a snapshot.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceRecord {
    /// Each arm: when, and with which timeout.
    pub arms: Vec<(Instant, Duration)>,
    /// The timeout it counts now, `None` unless armed.
    pub timeout: Option<Duration>,
    /// When it fires unless fed, `None` unless armed.
    pub deadline: Option<Instant>,
    /// Feeds accepted (while armed).
    pub feed_count: u64,
    /// When the accepted feeds arrived (the first [`DEVICE_FEED_LOG_LIMIT`]).
    pub feeds: Vec<Instant>,
    /// When the last accepted feed arrived.
    pub last_feed: Option<Instant>,
    /// Orderly stops (magic close while armed).
    pub closes: Vec<Instant>,
    /// When it fired (reset the board), observed by the device.
    pub fires: Vec<Instant>,
    /// Feeds that arrived while it was not armed (after a fire or a close): ignored.
    pub ignored_feeds: u64,
    /// Datagrams that were not requests.
    pub refused: u64,
    /// Why the last refused datagram was refused.
    pub last_refusal: Option<String>,
}

impl DeviceRecord {
    fn push<T>(log: &mut Vec<T>, item: T) {
        if log.len() < DEVICE_FEED_LOG_LIMIT {
            log.push(item);
        }
    }

    /// Fires if armed and the deadline passed by `now`; true if it fired.
    fn settle(&mut self, now: Instant) -> bool {
        match self.deadline {
            Some(deadline) if now >= deadline => {
                Self::push(&mut self.fires, now);
                self.deadline = None;
                self.timeout = None;
                true
            }
            _ => false,
        }
    }

    fn apply(&mut self, request: Request, now: Instant) {
        match request {
            Request::Arm(timeout) => {
                Self::push(&mut self.arms, (now, timeout));
                self.timeout = Some(timeout);
                self.deadline = Some(now + timeout);
            }
            Request::Feed => match self.timeout {
                Some(timeout) => {
                    self.deadline = Some(now + timeout);
                    self.feed_count += 1;
                    self.last_feed = Some(now);
                    Self::push(&mut self.feeds, now);
                }
                None => self.ignored_feeds += 1,
            },
            Request::MagicClose => {
                if self.timeout.take().is_some() {
                    self.deadline = None;
                    Self::push(&mut self.closes, now);
                }
            }
        }
    }
}

#[derive(Debug, Default)]
struct Shared {
    record: Mutex<DeviceRecord>,
    changed: Condvar,
    stop: AtomicBool,
}

impl Shared {
    fn record(&self) -> MutexGuard<'_, DeviceRecord> {
        self.record.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The simulated board's watchdog device, listening on a Unix datagram socket.
///
/// Dropping it stops listening and removes the socket.
#[derive(Debug)]
pub struct SimulatedWatchdogDevice {
    path: PathBuf,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl SimulatedWatchdogDevice {
    /// Listens on `socket` (a stale socket file there is replaced).
    pub fn bind(socket: impl Into<PathBuf>) -> io::Result<Self> {
        Self::bind_with_marker(socket, None)
    }

    /// Listens on `socket`; when it fires, it also writes `marker` (a file the harness
    /// or a test can look for: "the board was reset").
    pub fn bind_with_marker(
        socket: impl Into<PathBuf>,
        marker: Option<PathBuf>,
    ) -> io::Result<Self> {
        let path = socket.into();
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let socket = UnixDatagram::bind(&path)?;
        let shared = Arc::new(Shared::default());
        let thread = std::thread::Builder::new()
            .name("simulated-watchdog".into())
            .spawn({
                let shared = Arc::clone(&shared);
                move || listen(&socket, &shared, marker.as_deref())
            })?;
        Ok(Self {
            path,
            shared,
            thread: Some(thread),
        })
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A snapshot of what it saw.
    pub fn record(&self) -> DeviceRecord {
        self.shared.record().clone()
    }

    /// When it first fired, if it did.
    pub fn fired_at(&self) -> Option<Instant> {
        self.shared.record().fires.first().copied()
    }

    /// When the last accepted feed arrived.
    pub fn last_feed(&self) -> Option<Instant> {
        self.shared.record().last_feed
    }

    /// Whether it counts down now.
    pub fn is_armed(&self) -> bool {
        self.shared.record().timeout.is_some()
    }

    /// Waits up to `limit` until `done` holds for the record; returns the record then,
    /// or `None` if it did not within `limit`.
    pub fn wait_until(
        &self,
        limit: Duration,
        mut done: impl FnMut(&DeviceRecord) -> bool,
    ) -> Option<DeviceRecord> {
        let end = Instant::now() + limit;
        let mut record = self.shared.record();
        loop {
            if done(&record) {
                return Some(record.clone());
            }
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            record = self
                .shared
                .changed
                .wait_timeout(record, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

impl Drop for SimulatedWatchdogDevice {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

fn listen(socket: &UnixDatagram, shared: &Shared, marker: Option<&Path>) {
    // One byte more than the protocol allows, so a longer datagram shows as too long.
    let mut buf = [0u8; MAX_DATAGRAM + 1];
    while !shared.stop.load(Ordering::Relaxed) {
        let wait = {
            let record = shared.record();
            record
                .deadline
                .map_or(POLL, |d| d.saturating_duration_since(Instant::now()))
                .clamp(Duration::from_millis(1), POLL)
        };
        if socket.set_read_timeout(Some(wait)).is_err() {
            return;
        }
        let received = socket.recv(&mut buf);
        let now = Instant::now();
        let mut record = shared.record();
        let fired = record.settle(now);
        match received {
            Ok(len) => match Request::decode(&buf[..len]) {
                Ok(request) => record.apply(request, now),
                Err(refusal) => {
                    record.refused += 1;
                    record.last_refusal = Some(refusal.to_string());
                }
            },
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                if !fired {
                    continue;
                }
            }
            Err(e) => {
                record.refused += 1;
                record.last_refusal = Some(format!("receiving: {e}"));
            }
        }
        drop(record);
        shared.changed.notify_all();
        if fired {
            tracing::warn!("simulated watchdog fired: the board resets");
            if let Some(marker) = marker {
                if let Err(e) = std::fs::write(marker, b"fired\n") {
                    tracing::error!(marker = %marker.display(), %e, "writing the fire marker");
                }
            }
        }
    }
}
