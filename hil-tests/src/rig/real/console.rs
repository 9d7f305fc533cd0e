//! A serial console as the harness reads it: everything received is kept (the
//! transcript), matched as it arrives, partial lines included (U-Boot's "Hit any key to
//! stop autoboot:" has no newline), and prompts are answered with one line each.
//!
//! The port is any byte stream (a `serialport` port, a pseudo-terminal in tests): a
//! reader thread moves what arrives into a channel, so waits have deadlines whatever
//! the port's own timeouts are. The transcript is bounded ([`MAX_TRANSCRIPT`]: the
//! oldest bytes are dropped, the match positions move with them).

use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};

/// The most console text kept.
pub const MAX_TRANSCRIPT: usize = 4 << 20;
/// The most prompts answered at once.
pub const MAX_PROMPTS: usize = 32;

/// A prompt and the line sent when it appears.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prompt {
    pub text: String,
    /// Sent followed by `\n`, once per time `text` appears.
    pub reply: String,
}

/// A console.
pub struct Console {
    received: Receiver<std::io::Result<Vec<u8>>>,
    writer: Box<dyn Write + Send>,
    stop: Arc<AtomicBool>,
    text: String,
    /// Where the next `expect` starts.
    cursor: usize,
    /// Where prompts were last looked for.
    prompt_cursor: usize,
    prompts: Vec<Prompt>,
    /// Lines sent, in order (for reports and tests).
    sent: Vec<String>,
    closed: Option<String>,
}

impl std::fmt::Debug for Console {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Console")
            .field("received", &self.text.len())
            .field("prompts", &self.prompts)
            .field("sent", &self.sent)
            .finish_non_exhaustive()
    }
}

impl Console {
    /// A console on `reader` (moved to a thread of its own) and `writer`. A reader that
    /// times out (`TimedOut`, `WouldBlock`, as serial ports do) is read again.
    pub fn new(
        mut reader: Box<dyn Read + Send>,
        writer: Box<dyn Write + Send>,
    ) -> anyhow::Result<Self> {
        let (tx, rx) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        std::thread::Builder::new()
            .name("console".into())
            .spawn(move || {
                let mut buf = [0u8; 4096];
                while !stopped.load(Ordering::SeqCst) {
                    match reader.read(&mut buf) {
                        Ok(0) => {
                            let _ = tx.send(Err(std::io::ErrorKind::UnexpectedEof.into()));
                            return;
                        }
                        Ok(n) => {
                            if tx.send(Ok(buf[..n].to_vec())).is_err() {
                                return;
                            }
                        }
                        Err(e)
                            if matches!(
                                e.kind(),
                                std::io::ErrorKind::TimedOut
                                    | std::io::ErrorKind::WouldBlock
                                    | std::io::ErrorKind::Interrupted
                            ) => {}
                        Err(e) => {
                            let _ = tx.send(Err(e));
                            return;
                        }
                    }
                }
            })
            .context("starting the console's reader thread")?;
        Ok(Console {
            received: rx,
            writer,
            stop,
            text: String::new(),
            cursor: 0,
            prompt_cursor: 0,
            prompts: Vec::new(),
            sent: Vec::new(),
            closed: None,
        })
    }

    /// Answers `text` with `reply` (one line) every time it appears from now on.
    pub fn answer(&mut self, text: &str, reply: &str) -> anyhow::Result<()> {
        if text.is_empty() {
            bail!("an empty prompt would match everywhere");
        }
        if reply.contains('\n') || reply.contains('\r') {
            bail!("a prompt's reply is one line: {reply:?}");
        }
        if self.prompts.len() >= MAX_PROMPTS {
            bail!("at most {MAX_PROMPTS} prompts are answered");
        }
        self.prompts.push(Prompt {
            text: text.into(),
            reply: reply.into(),
        });
        Ok(())
    }

    /// Sends one line.
    pub fn send_line(&mut self, line: &str) -> anyhow::Result<()> {
        self.writer
            .write_all(format!("{line}\n").as_bytes())
            .and_then(|()| self.writer.flush())
            .context("writing to the console")?;
        self.sent.push(line.into());
        Ok(())
    }

    /// The lines sent so far.
    pub fn sent(&self) -> &[String] {
        &self.sent
    }

    /// Everything received (the newest [`MAX_TRANSCRIPT`] bytes).
    pub fn transcript(&self) -> &str {
        &self.text
    }

    /// Takes what arrived within `wait` (at most), answers prompts in it.
    pub fn pump(&mut self, wait: Duration) -> anyhow::Result<()> {
        let mut first = true;
        loop {
            let got = if first {
                self.received.recv_timeout(wait)
            } else {
                self.received
                    .try_recv()
                    .map_err(|_| RecvTimeoutError::Timeout)
            };
            first = false;
            match got {
                Ok(Ok(bytes)) => self.push(&bytes),
                Ok(Err(e)) => {
                    self.closed = Some(e.to_string());
                    break;
                }
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => {
                    self.closed
                        .get_or_insert_with(|| "the reader stopped".into());
                    break;
                }
            }
        }
        self.answer_prompts()
    }

    fn push(&mut self, bytes: &[u8]) {
        self.text.push_str(&String::from_utf8_lossy(bytes));
        if self.text.len() > MAX_TRANSCRIPT {
            let mut cut = self.text.len() - MAX_TRANSCRIPT;
            while !self.text.is_char_boundary(cut) {
                cut += 1;
            }
            self.text.drain(..cut);
            self.cursor = self.cursor.saturating_sub(cut);
            self.prompt_cursor = self.prompt_cursor.saturating_sub(cut);
        }
    }

    fn answer_prompts(&mut self) -> anyhow::Result<()> {
        loop {
            // The earliest prompt after the cursor is answered first, once.
            let found = self
                .prompts
                .iter()
                .filter_map(|p| {
                    self.text[self.prompt_cursor..]
                        .find(&p.text)
                        .map(|at| (self.prompt_cursor + at, p.clone()))
                })
                .min_by_key(|(at, _)| *at);
            let Some((at, prompt)) = found else {
                return Ok(());
            };
            self.prompt_cursor = at + prompt.text.len();
            self.send_line(&prompt.reply)?;
        }
    }

    /// Waits until `needle` appears after the last match (partial lines match) and
    /// returns the text up to and including it.
    pub fn expect(&mut self, needle: &str, timeout: Duration) -> anyhow::Result<String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(at) = self.text[self.cursor..].find(needle) {
                let end = self.cursor + at + needle.len();
                let found = self.text[self.cursor..end].to_owned();
                self.cursor = end;
                return Ok(found);
            }
            if let Some(why) = &self.closed {
                bail!("the console closed ({why}) before {needle:?} appeared");
            }
            let now = Instant::now();
            if now >= deadline {
                bail!("{needle:?} did not appear on the console within {timeout:?}");
            }
            self.pump((deadline - now).min(Duration::from_millis(100)))?;
        }
    }

    /// Waits for a line starting with `prefix` after the last match and returns the
    /// whole line (it waits for its end).
    pub fn expect_line(&mut self, prefix: &str, timeout: Duration) -> anyhow::Result<String> {
        let deadline = Instant::now() + timeout;
        self.expect(prefix, timeout)?;
        loop {
            if let Some(end) = self.text[self.cursor..].find('\n') {
                let rest = self.text[self.cursor..self.cursor + end]
                    .trim_end_matches('\r')
                    .to_owned();
                self.cursor += end + 1;
                return Ok(format!("{prefix}{rest}"));
            }
            let now = Instant::now();
            if now >= deadline {
                bail!("the line starting {prefix:?} did not end within {timeout:?}");
            }
            self.pump((deadline - now).min(Duration::from_millis(100)))?;
        }
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}
