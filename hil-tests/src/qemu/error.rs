//! What can go wrong running a QEMU machine, with the context to act on it.

use std::path::PathBuf;
use std::time::Duration;

/// A failure of the QEMU runner.
#[derive(Debug, thiserror::Error)]
pub enum QemuError {
    #[error("`{tool}` is missing: install the Debian package {package} (scripts/install-deps)")]
    MissingTool { tool: String, package: String },
    #[error("{} is missing: install the Debian package {package} (scripts/install-deps)", path.display())]
    MissingFile { path: PathBuf, package: String },
    #[error("cannot start {program}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{what} failed on {}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`{command}` failed: {stderr}")]
    Tool { command: String, stderr: String },
    #[error("waited {waited:?} for {needle:?} on the console; it printed, since the last match:\n{tail}")]
    ExpectTimeout {
        needle: String,
        waited: Duration,
        tail: String,
    },
    #[error("the console closed (QEMU exited) before {needle:?}; it printed, since the last match:\n{tail}")]
    ConsoleClosed { needle: String, tail: String },
    #[error("this machine's console takes no input")]
    NoConsoleInput,
    #[error("typing on the console failed")]
    ConsoleWrite {
        #[source]
        source: std::io::Error,
    },
    #[error("QMP socket {} did not accept a connection within {waited:?}", path.display())]
    QmpConnect {
        path: PathBuf,
        waited: Duration,
        #[source]
        source: std::io::Error,
    },
    #[error("QMP I/O failed during {during}")]
    QmpIo {
        during: String,
        #[source]
        source: std::io::Error,
    },
    #[error("QMP sent a message that is not JSON during {during}: {line:?}")]
    QmpGarbage { during: String, line: String },
    #[error("QMP message longer than {limit} bytes during {during}")]
    QmpTooLong { during: String, limit: usize },
    #[error("QMP closed the connection during {during}")]
    QmpClosed { during: String },
    #[error("QMP command {command} failed: {class}: {desc}")]
    QmpCommand {
        command: String,
        class: String,
        desc: String,
    },
    #[error("waited {waited:?} for QMP event {event}; saw {seen:?}")]
    EventTimeout {
        event: String,
        waited: Duration,
        seen: Vec<String>,
    },
    #[error("QEMU did not exit within {waited:?}")]
    ExitTimeout { waited: Duration },
    #[error("QEMU exited with {status} before the test was done; stderr:\n{stderr}")]
    Exited { status: String, stderr: String },
}
