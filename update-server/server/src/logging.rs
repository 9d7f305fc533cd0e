//! The server's log: `tracing` events on stderr, as text lines for a person or one JSON
//! object per line (`--log-format json`) for journald, Loki or any log shipper. Every
//! event names its facts as fields (`rollout`, `device`, `error`, …) rather than only in
//! its message. `SKERRY_LOG` filters (`info` unless set; `warn`, `skerry_server=debug`).

use tracing_subscriber::EnvFilter;

/// How log lines look.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// `2026-12-03T10:00:00.000000Z  INFO skerry_server: message key=value`.
    #[default]
    Text,
    /// `{"timestamp":…,"level":"INFO","fields":{"message":…,"key":…},"target":…}`.
    Json,
}

/// Installs the subscriber for this process (once; later calls do nothing).
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_env("SKERRY_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = format == LogFormat::Text
        && std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}
