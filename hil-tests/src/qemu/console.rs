//! The guest's serial console on QEMU's stdio: a thread reads it into a [`Transcript`],
//! [`Console::expect`] waits for text with a timeout, [`Console::send_line`] types a line.

use std::io::{Read, Write};
use std::process::{ChildStdin, ChildStdout};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::qemu::error::QemuError;
use crate::qemu::transcript::Transcript;

/// How much of the unmatched console output an error message quotes.
const ERROR_TAIL: usize = 2000;

#[derive(Debug, Default)]
struct Shared {
    transcript: Transcript,
    /// The console reached end of file (QEMU exited or closed it).
    closed: bool,
}

#[derive(Debug, Default)]
struct Channel {
    shared: Mutex<Shared>,
    grew: Condvar,
}

impl Channel {
    fn lock(&self) -> MutexGuard<'_, Shared> {
        // A panic while holding the lock leaves a transcript that is still usable text.
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A machine's serial console.
#[derive(Debug)]
pub struct Console {
    channel: Arc<Channel>,
    input: Option<ChildStdin>,
    reader: Option<JoinHandle<()>>,
}

impl Console {
    /// Starts reading `output`; `input` (if any) is where [`Console::send_line`] types.
    pub fn new(output: ChildStdout, input: Option<ChildStdin>) -> Console {
        Console::from_stream(output, input)
    }

    pub(crate) fn from_stream(
        mut output: impl Read + Send + 'static,
        input: Option<ChildStdin>,
    ) -> Console {
        let channel = Arc::new(Channel::default());
        let feed = Arc::clone(&channel);
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            loop {
                let n = match output.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                feed.lock().transcript.push(&buf[..n]);
                feed.grew.notify_all();
            }
            feed.lock().closed = true;
            feed.grew.notify_all();
        });
        Console {
            channel,
            input,
            reader: Some(reader),
        }
    }

    /// Waits up to `timeout` for `needle` after the previous match, partial lines
    /// included; returns the text up to and including it.
    pub fn expect(&self, needle: &str, timeout: Duration) -> Result<String, QemuError> {
        let deadline = Instant::now() + timeout;
        let mut shared = self.channel.lock();
        loop {
            if let Some(text) = shared.transcript.take_through(needle) {
                return Ok(text);
            }
            let tail = || tail(&shared.transcript.unmatched());
            if shared.closed {
                return Err(QemuError::ConsoleClosed {
                    needle: needle.to_owned(),
                    tail: tail(),
                });
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(QemuError::ExpectTimeout {
                    needle: needle.to_owned(),
                    waited: timeout,
                    tail: tail(),
                });
            }
            shared = self
                .channel
                .grew
                .wait_timeout(shared, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Waits for the first of `needles`; returns its index and the text through it.
    pub fn expect_any(
        &self,
        needles: &[&str],
        timeout: Duration,
    ) -> Result<(usize, String), QemuError> {
        let deadline = Instant::now() + timeout;
        let mut shared = self.channel.lock();
        loop {
            let unmatched = shared.transcript.unmatched();
            let first = needles
                .iter()
                .enumerate()
                .filter_map(|(i, n)| unmatched.find(n).map(|at| (at, i)))
                .min();
            if let Some((_, i)) = first {
                let text = shared
                    .transcript
                    .take_through(needles[i])
                    .unwrap_or_default();
                return Ok((i, text));
            }
            let now = Instant::now();
            if shared.closed || now >= deadline {
                let needle = needles.join(" | ");
                let tail = tail(&unmatched);
                return Err(if shared.closed {
                    QemuError::ConsoleClosed { needle, tail }
                } else {
                    QemuError::ExpectTimeout {
                        needle,
                        waited: timeout,
                        tail,
                    }
                });
            }
            shared = self
                .channel
                .grew
                .wait_timeout(shared, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Types `line` and a carriage return (what a terminal sends for Enter).
    pub fn send_line(&mut self, line: &str) -> Result<(), QemuError> {
        let input = self.input.as_mut().ok_or(QemuError::NoConsoleInput)?;
        input
            .write_all(format!("{line}\r").as_bytes())
            .and_then(|()| input.flush())
            .map_err(|source| QemuError::ConsoleWrite { source })
    }

    /// Everything the console printed (kept up to the transcript's limit).
    pub fn transcript(&self) -> String {
        self.channel.lock().transcript.all()
    }

    /// Stops typing and waits for the reader to see the end of the output (call after
    /// the process is gone).
    pub(crate) fn finish(&mut self) {
        self.input = None;
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}

fn tail(text: &str) -> String {
    let start = text
        .char_indices()
        .rev()
        .nth(ERROR_TAIL)
        .map_or(0, |(i, _)| i);
    text[start..].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A console fed from a pipe the test writes to.
    fn console_with_writer() -> (Console, std::io::PipeWriter) {
        let (reader, writer) = std::io::pipe().unwrap();
        (Console::from_stream(reader, None), writer)
    }

    #[test]
    fn expect_waits_for_output_that_arrives_later() {
        let (console, mut writer) = console_with_writer();
        let typist = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            writer
                .write_all(b"Hit any key to stop autoboot:  2 ")
                .unwrap();
            writer
        });
        let text = console
            .expect("Hit any key", Duration::from_secs(10))
            .unwrap();
        assert_eq!(text, "Hit any key");
        drop(typist.join().unwrap());
    }

    #[test]
    fn expect_times_out_naming_what_it_waited_for() {
        let (console, mut writer) = console_with_writer();
        writer.write_all(b"Booting slot A\n").unwrap();
        let err = console
            .expect("SKERRY-BOOT-B", Duration::from_millis(100))
            .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("SKERRY-BOOT-B"), "{text}");
        assert!(
            matches!(err, QemuError::ExpectTimeout { ref tail, .. } if tail.contains("Booting slot A"))
        );
    }

    #[test]
    fn expect_fails_at_once_when_the_console_closes() {
        let (console, mut writer) = console_with_writer();
        writer.write_all(b"poweroff\n").unwrap();
        drop(writer);
        let started = Instant::now();
        let err = console
            .expect("never", Duration::from_secs(30))
            .unwrap_err();
        assert!(matches!(err, QemuError::ConsoleClosed { .. }), "{err}");
        assert!(started.elapsed() < Duration::from_secs(20));
    }

    #[test]
    fn expect_any_takes_the_earliest_match() {
        let (console, mut writer) = console_with_writer();
        writer
            .write_all(b"saving failed; starting slot A\n")
            .unwrap();
        let (i, text) = console
            .expect_any(&["starting slot", "saving failed"], Duration::from_secs(10))
            .unwrap();
        assert_eq!((i, text.as_str()), (1, "saving failed"));
        let (i, _) = console
            .expect_any(&["starting slot", "saving failed"], Duration::from_secs(10))
            .unwrap();
        assert_eq!(i, 0);
    }

    #[test]
    fn send_line_without_input_is_an_error() {
        let (mut console, _writer) = console_with_writer();
        assert!(matches!(
            console.send_line("reset"),
            Err(QemuError::NoConsoleInput)
        ));
    }
}
