//! The bounded ring a service's stdout or stderr goes into. Output is split into
//! lines; a line longer than `max_line_bytes` is cut into pieces of that size (marked
//! `cut`), so an endless line costs no more than a full ring. The oldest lines make
//! room for new ones. Memory held: at most `ring_bytes` of stored lines (each counted
//! with [`LINE_OVERHEAD`]) plus one pending partial line of at most `max_line_bytes`.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::watch;

use crate::spec::LogLimits;

/// Bytes each stored line is charged beyond its text: its header and the deque slot,
/// so a flood of empty lines is bounded too.
pub const LINE_OVERHEAD: usize = 48;

/// Which stream a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LogStream {
    Stdout,
    Stderr,
}

/// One captured line (without its newline).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    /// Position in this stream since the service was registered, so a reader can tell
    /// how many lines it missed.
    pub seq: u64,
    pub stream: LogStream,
    /// The bytes as UTF-8 (invalid sequences replaced).
    pub text: String,
    /// The line went on: this is a piece of at most `max_line_bytes`.
    pub cut: bool,
    /// When the line was complete (stored).
    pub time: SystemTime,
}

/// A bounded ring of lines for one stream.
#[derive(Debug)]
pub struct LogRing {
    stream: LogStream,
    limits: LogLimits,
    lines: VecDeque<LogLine>,
    used: usize,
    pending: Vec<u8>,
    next_seq: u64,
    dropped: u64,
}

impl LogRing {
    pub fn new(stream: LogStream, limits: LogLimits) -> Self {
        LogRing {
            stream,
            pending: Vec::with_capacity(limits.max_line_bytes),
            limits,
            lines: VecDeque::new(),
            used: 0,
            next_seq: 0,
            dropped: 0,
        }
    }

    /// Appends raw output; whole lines are stored, a trailing partial line waits.
    pub fn push(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let room = self.limits.max_line_bytes - self.pending.len();
            let window = &bytes[..bytes.len().min(room)];
            match window.iter().position(|&b| b == b'\n') {
                Some(at) => {
                    self.pending.extend_from_slice(&window[..at]);
                    self.flush_pending(false);
                    bytes = &bytes[at + 1..];
                }
                None => {
                    self.pending.extend_from_slice(window);
                    bytes = &bytes[window.len()..];
                    if self.pending.len() >= self.limits.max_line_bytes {
                        self.flush_pending(true);
                    }
                }
            }
        }
    }

    /// Stores a trailing partial line (the stream ended).
    pub fn finish(&mut self) {
        if !self.pending.is_empty() {
            self.flush_pending(false);
        }
    }

    fn flush_pending(&mut self, cut: bool) {
        let text = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        self.used += text.len() + LINE_OVERHEAD;
        self.lines.push_back(LogLine {
            seq: self.next_seq,
            stream: self.stream,
            text,
            cut,
            time: SystemTime::now(),
        });
        self.next_seq += 1;
        while self.used > self.limits.ring_bytes && self.lines.len() > 1 {
            if let Some(old) = self.lines.pop_front() {
                self.used -= old.text.len() + LINE_OVERHEAD;
                self.dropped += 1;
            }
        }
    }

    /// The lines held, oldest first.
    pub fn lines(&self) -> Vec<LogLine> {
        self.lines.iter().cloned().collect()
    }

    /// The lines held with a sequence number of at least `seq`, oldest first.
    pub fn since(&self, seq: u64) -> Vec<LogLine> {
        let first = self.lines.front().map_or(self.next_seq, |l| l.seq);
        let skip = usize::try_from(seq.saturating_sub(first)).unwrap_or(usize::MAX);
        self.lines.iter().skip(skip).cloned().collect()
    }

    /// The last `n` lines held, oldest first.
    pub fn tail(&self, n: usize) -> Vec<LogLine> {
        let skip = self.lines.len().saturating_sub(n);
        self.lines.iter().skip(skip).cloned().collect()
    }

    /// Bytes charged for the stored lines (text plus per-line overhead).
    pub fn used_bytes(&self) -> usize {
        self.used
    }

    /// Bytes of heap this ring holds at most right now: stored text, overhead and the
    /// pending buffer's capacity.
    pub fn held_bytes(&self) -> usize {
        self.used + self.pending.capacity()
    }

    /// Lines evicted to make room.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Lines stored so far, evicted ones included.
    pub fn total_lines(&self) -> u64 {
        self.next_seq
    }
}

/// A ring shared between its reader task and whoever asks for the logs; a watch
/// carries the count of lines stored so far, so a follower wakes on new lines.
#[derive(Debug, Clone)]
pub(crate) struct SharedRing {
    ring: Arc<Mutex<LogRing>>,
    stored: Arc<watch::Sender<u64>>,
}

impl SharedRing {
    pub(crate) fn new(stream: LogStream, limits: LogLimits) -> Self {
        SharedRing {
            ring: Arc::new(Mutex::new(LogRing::new(stream, limits))),
            stored: Arc::new(watch::channel(0).0),
        }
    }

    /// The ring; a panic elsewhere while holding it leaves lines, not broken memory,
    /// so a poisoned lock is still read.
    pub(crate) fn lock(&self) -> MutexGuard<'_, LogRing> {
        self.ring
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Announces the lines stored so far to followers.
    fn announce(&self) {
        let total = self.lock().total_lines();
        self.stored.send_if_modified(|seen| {
            let changed = *seen != total;
            *seen = total;
            changed
        });
    }

    /// Copies a pipe into the ring until it ends or fails.
    pub(crate) async fn capture(self, mut pipe: impl AsyncRead + Unpin) {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match pipe.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    self.lock().push(&buf[..n]);
                    self.announce();
                }
            }
        }
        self.lock().finish();
        self.announce();
    }
}

/// A reader of one service's two rings that needs no lock on the supervisor: what
/// the Logs API reads, with `follow` through [`LogSource::changed`].
#[derive(Debug, Clone)]
pub struct LogSource {
    stdout: SharedRing,
    stderr: SharedRing,
    stdout_seen: watch::Receiver<u64>,
    stderr_seen: watch::Receiver<u64>,
}

impl LogSource {
    pub(crate) fn new(stdout: &SharedRing, stderr: &SharedRing) -> Self {
        LogSource {
            stdout_seen: stdout.stored.subscribe(),
            stderr_seen: stderr.stored.subscribe(),
            stdout: stdout.clone(),
            stderr: stderr.clone(),
        }
    }

    fn ring(&self, stream: LogStream) -> &SharedRing {
        match stream {
            LogStream::Stdout => &self.stdout,
            LogStream::Stderr => &self.stderr,
        }
    }

    /// The last `n` lines held of `stream` (all of them for `None`), oldest first.
    pub fn tail(&self, stream: LogStream, n: Option<usize>) -> Vec<LogLine> {
        let ring = self.ring(stream).lock();
        match n {
            Some(n) => ring.tail(n),
            None => ring.lines(),
        }
    }

    /// The lines of `stream` held from sequence number `seq` on.
    pub fn since(&self, stream: LogStream, seq: u64) -> Vec<LogLine> {
        self.ring(stream).lock().since(seq)
    }

    /// Lines stored so far in `stream`, evicted ones included: the next line's `seq`.
    pub fn total_lines(&self, stream: LogStream) -> u64 {
        self.ring(stream).lock().total_lines()
    }

    /// Resolves once either stream stored a line not seen through this source yet.
    /// Never resolves once the service (and its rings) are gone.
    pub async fn changed(&mut self) {
        tokio::select! {
            changed = self.stdout_seen.changed() => {
                if changed.is_err() {
                    std::future::pending::<()>().await;
                }
            }
            changed = self.stderr_seen.changed() => {
                if changed.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(ring_bytes: usize, max_line_bytes: usize) -> LogRing {
        LogRing::new(
            LogStream::Stdout,
            LogLimits {
                ring_bytes,
                max_line_bytes,
            },
        )
    }

    fn texts(r: &LogRing) -> Vec<(String, bool)> {
        r.lines().into_iter().map(|l| (l.text, l.cut)).collect()
    }

    #[test]
    fn lines_split_across_pushes_are_joined() {
        let mut r = ring(4096, 64);
        r.push(b"hel");
        r.push(b"lo\nwor");
        r.push(b"ld\n\npartial");
        assert_eq!(
            texts(&r),
            [
                ("hello".into(), false),
                ("world".into(), false),
                ("".into(), false)
            ]
        );
        r.finish();
        assert_eq!(
            r.lines().last().map(|l| l.text.clone()),
            Some("partial".into())
        );
    }

    #[test]
    fn an_endless_line_is_cut_into_bounded_pieces() {
        let mut r = ring(1024, 100);
        for _ in 0..10_000 {
            r.push(&[b'x'; 333]);
        }
        assert!(r.held_bytes() <= 1024 + 100, "held {}", r.held_bytes());
        assert!(r.lines().iter().all(|l| l.text.len() == 100 && l.cut));
        assert_eq!(r.total_lines(), 10_000 * 333 / 100);
    }

    #[test]
    fn oldest_lines_are_evicted_and_counted() {
        let mut r = ring(3 * (LINE_OVERHEAD + 2), 10);
        r.push(b"l1\nl2\nl3\nl4\nl5\n");
        assert_eq!(
            texts(&r).into_iter().map(|t| t.0).collect::<Vec<_>>(),
            ["l3", "l4", "l5"]
        );
        assert_eq!(r.dropped(), 2);
        assert_eq!(r.lines()[0].seq, 2);
        assert_eq!(r.tail(1)[0].text, "l5");
        assert_eq!(r.since(0).len(), 3);
        assert_eq!(r.since(4)[0].text, "l5");
        assert!(r.since(5).is_empty());
    }

    #[test]
    fn a_flood_of_empty_lines_is_bounded() {
        let mut r = ring(4096, 64);
        r.push(&vec![b'\n'; 1 << 20]);
        assert!(r.used_bytes() <= 4096);
        assert_eq!(r.total_lines(), 1 << 20);
    }

    #[test]
    fn invalid_utf8_is_replaced_not_refused() {
        let mut r = ring(4096, 64);
        r.push(b"a\xffb\n");
        assert_eq!(r.lines()[0].text, "a\u{fffd}b");
    }
}
