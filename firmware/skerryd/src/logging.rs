//! `tracing` output: human-readable lines by default, JSON lines for log shippers. Each
//! line also goes, colour codes stripped, to the console outbox the log server is fed
//! from (`skerry.logs=`, skerryd_fleet::ship).

use clap::ValueEnum;
use skerryd_fleet::ship::Outbox;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;

/// How log lines look.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// `2026-12-02T01:00:00Z INFO skerryd: message key=value`.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// The most of one event's text kept for the outbox (the server cuts lines at 2 KiB).
const MAX_EVENT_TEXT: usize = 16 * 1024;

/// stderr, and a copy of each event's lines into the outbox.
struct Tee {
    console: Option<Outbox>,
}

/// One event's writer: written through to stderr, gathered for the outbox, which takes
/// the lines when the event is done (tracing writes an event, then drops its writer).
struct TeeEvent<'a> {
    console: Option<&'a Outbox>,
    text: Vec<u8>,
}

impl<'a> MakeWriter<'a> for Tee {
    type Writer = TeeEvent<'a>;
    fn make_writer(&'a self) -> TeeEvent<'a> {
        TeeEvent {
            console: self.console.as_ref(),
            text: Vec::new(),
        }
    }
}

impl std::io::Write for TeeEvent<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.console.is_some() {
            let room = MAX_EVENT_TEXT.saturating_sub(self.text.len());
            self.text.extend_from_slice(&buf[..buf.len().min(room)]);
        }
        // Whole, so the copy above and what stderr got are the same bytes.
        std::io::Write::write_all(&mut std::io::stderr(), buf)?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        std::io::Write::flush(&mut std::io::stderr())
    }
}

impl Drop for TeeEvent<'_> {
    fn drop(&mut self) {
        if let Some(console) = self.console {
            if !self.text.is_empty() {
                console.push_text(&strip_colour(&self.text));
            }
        }
    }
}

/// `text` without ANSI escape sequences (`ESC [ … letter`).
fn strip_colour(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut bytes = text.iter().copied();
    while let Some(b) = bytes.next() {
        if b != 0x1b {
            out.push(b);
            continue;
        }
        if bytes.next() == Some(b'[') {
            for c in bytes.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        }
    }
    out
}

/// Installs the subscriber; `SKERRYD_LOG` filters (default `info`). On a device
/// (`console`) the lines go to the serial console: never colour codes there. With
/// `outbox`, every line is also kept there.
pub fn init(format: LogFormat, console: bool, outbox: Option<Outbox>) {
    let filter = EnvFilter::try_from_env("SKERRYD_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    // Colours only for a person at a terminal: a serial console or a log file gets plain
    // text (escape codes in a board's console log are noise to every reader).
    let ansi = !console
        && std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none()
        && std::env::var("TERM").map_or(true, |t| t != "linux" && t != "dumb");
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(Tee { console: outbox });
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    #[test]
    fn colour_codes_are_stripped_and_the_text_kept() {
        assert_eq!(
            strip_colour(b"\x1b[2m2026\x1b[0m \x1b[32m INFO\x1b[0m ready"),
            b"2026  INFO ready"
        );
        assert_eq!(strip_colour("é\x1b".as_bytes()), "é".as_bytes());
    }

    #[test]
    fn each_event_reaches_the_outbox_as_its_lines() {
        let outbox = skerryd_fleet::ship::console_outbox();
        let tee = Tee {
            console: Some(outbox.clone()),
        };
        {
            let mut w = tee.make_writer();
            w.write_all(b"first \x1b[1mpart").unwrap();
            w.write_all(b" second\nthird\n").unwrap();
        }
        assert_eq!(outbox.batch().unwrap().body, "first part second\nthird\n");
    }
}
