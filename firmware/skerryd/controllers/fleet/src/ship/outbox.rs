//! The lines waiting to be shipped: bounded by count and bytes, oldest dropped first
//! (and counted), each line cut to what the server keeps. Shared between whoever writes
//! (the log writer, the event follower) and the shipper, which takes a batch, posts it
//! and only then removes it.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

/// The most lines one request carries (the server's limit).
pub const MAX_BATCH_LINES: usize = 512;
/// The most bytes one request carries (under the server's 64 KiB).
pub const MAX_BATCH_BYTES: usize = 60 * 1024;

/// Lines waiting, and how many were dropped since the last batch went out.
#[derive(Debug, Clone)]
pub struct Outbox {
    inner: Arc<Mutex<Waiting>>,
    wake: Arc<Notify>,
    max_lines: usize,
    max_bytes: usize,
    max_line: usize,
    /// The line that says how many were dropped, first in the next batch.
    dropped_note: fn(u64) -> String,
}

#[derive(Debug, Default)]
struct Waiting {
    /// Each line with its number (counting every line ever pushed).
    lines: VecDeque<(u64, String)>,
    bytes: usize,
    dropped: u64,
    pushed: u64,
}

fn cut(line: &str, max: usize) -> &str {
    if line.len() <= max {
        return line;
    }
    let mut end = max;
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    &line[..end]
}

impl Outbox {
    /// Keeps at most `max_lines` lines and `max_bytes` bytes, each line cut to
    /// `max_line` bytes; a batch after a drop starts with `dropped_note(count)`.
    pub fn new(
        max_lines: usize,
        max_bytes: usize,
        max_line: usize,
        dropped_note: fn(u64) -> String,
    ) -> Self {
        Outbox {
            dropped_note,
            inner: Arc::default(),
            wake: Arc::default(),
            max_lines: max_lines.max(1),
            max_bytes: max_bytes.max(max_line),
            max_line,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Waiting> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds one line (no `\n` inside; `\r` and a trailing newline are taken off).
    pub fn push(&self, line: &str) {
        let line = cut(line.trim_end_matches(['\n', '\r']), self.max_line).to_owned();
        let mut w = self.lock();
        w.bytes += line.len() + 1;
        w.pushed += 1;
        let number = w.pushed;
        w.lines.push_back((number, line));
        while w.lines.len() > self.max_lines || w.bytes > self.max_bytes {
            let Some((_, old)) = w.lines.pop_front() else {
                break;
            };
            w.bytes -= old.len() + 1;
            w.dropped += 1;
        }
        drop(w);
        self.wake.notify_one();
    }

    /// Adds each line of `text` (invalid UTF-8 becomes U+FFFD).
    pub fn push_text(&self, text: &[u8]) {
        for line in String::from_utf8_lossy(text).lines() {
            self.push(line);
        }
    }

    /// The next batch (at most [`MAX_BATCH_LINES`] lines, [`MAX_BATCH_BYTES`] bytes),
    /// led by the dropped-lines note when some were dropped; `None` when nothing waits.
    pub fn batch(&self) -> Option<Batch> {
        let w = self.lock();
        let mut body = String::new();
        let mut room = MAX_BATCH_LINES;
        if w.dropped > 0 {
            body = (self.dropped_note)(w.dropped);
            body.push('\n');
            room -= 1;
        }
        let mut lines = 0;
        let mut last = 0;
        for (number, line) in w.lines.iter().take(room) {
            if !body.is_empty() && body.len() + line.len() + 1 > MAX_BATCH_BYTES {
                break;
            }
            body.push_str(line);
            body.push('\n');
            lines += 1;
            last = *number;
        }
        (lines > 0).then_some(Batch {
            body,
            lines,
            last,
            dropped: w.dropped,
        })
    }

    /// Removes a batch the server took (lines pushed since stay, and lines of it
    /// dropped meanwhile are not dropped twice).
    pub fn shipped(&self, batch: &Batch) {
        let mut w = self.lock();
        while w.lines.front().is_some_and(|(n, _)| *n <= batch.last) {
            if let Some((_, old)) = w.lines.pop_front() {
                w.bytes -= old.len() + 1;
            }
        }
        w.dropped = w.dropped.saturating_sub(batch.dropped);
    }

    /// Lines waiting now.
    pub fn len(&self) -> usize {
        self.lock().lines.len()
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Resolves once a line was pushed since the last wake.
    pub async fn pushed(&self) {
        self.wake.notified().await;
    }
}

/// A batch taken from an [`Outbox`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// The lines, each ending in `\n`.
    pub body: String,
    pub lines: usize,
    /// The number of its last line.
    last: u64,
    /// Lines dropped (the outbox was full) before these.
    pub dropped: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note(n: u64) -> String {
        format!("[{n} dropped]")
    }

    #[test]
    fn the_oldest_lines_go_first_when_full_and_are_counted() {
        let out = Outbox::new(3, 1 << 20, 8, note);
        for i in 0..5 {
            out.push(&format!("line {i}"));
        }
        let b = out.batch().unwrap();
        assert_eq!(b.body, "[2 dropped]\nline 2\nline 3\nline 4\n");
        assert_eq!(b.dropped, 2);
        out.push("line 5");
        out.shipped(&b);
        let rest = out.batch().unwrap();
        // line 2 was dropped while the batch was out: counted again, once.
        assert_eq!(rest.body, "[1 dropped]\nline 5\n");
    }

    #[test]
    fn lines_are_cut_at_a_character_boundary_and_bytes_bound_the_outbox() {
        let out = Outbox::new(100, 20, 5, note);
        out.push("ééé\r\n");
        assert_eq!(out.batch().unwrap().body, "éé\n");
        let b = out.batch().unwrap();
        out.shipped(&b);
        for _ in 0..10 {
            out.push("abcdefgh");
        }
        // Each kept line is 5 bytes and its newline: at most 20 bytes, so 3 lines.
        assert_eq!(out.len(), 3);
        out.push_text(b"x\xffy\nz");
        let body = out.batch().unwrap().body;
        assert!(body.starts_with("[8 dropped]\n"), "{body:?}");
        assert!(body.ends_with("x\u{fffd}y\nz\n"), "{body:?}");
    }

    #[test]
    fn a_batch_stays_inside_the_servers_request_limits() {
        let out = Outbox::new(10_000, 10 << 20, 2048, note);
        for _ in 0..600 {
            out.push("short");
        }
        assert_eq!(out.batch().unwrap().lines, MAX_BATCH_LINES);
        let big = Outbox::new(10_000, 10 << 20, 2048, note);
        for _ in 0..100 {
            big.push(&"x".repeat(2048));
        }
        let b = big.batch().unwrap();
        assert!(
            b.body.len() <= MAX_BATCH_BYTES && b.lines == 29,
            "{}",
            b.lines
        );
    }
}
