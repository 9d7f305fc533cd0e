//! `tracing` output: human-readable lines by default, JSON lines for log shippers.

use clap::ValueEnum;
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

/// Installs the subscriber; `SKERRYD_LOG` filters (default `info`). On a device
/// (`console`) the lines go to the serial console: never colour codes there.
pub fn init(format: LogFormat, console: bool) {
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
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}
