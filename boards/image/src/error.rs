//! [`ImageError`]: what went wrong building an image, naming the file, tool or input.

use std::path::PathBuf;

/// Why an image could not be built. Nothing is left at the output paths on error.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("{what} {}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{tool} is not installed: install the Debian package {package} (scripts/install-deps test)"
    )]
    MissingTool { tool: String, package: String },
    #[error("running {command} failed: {stderr}")]
    Tool { command: String, stderr: String },
    #[error("the kernel package {} is missing: run `scripts/install-deps test` (scripts/deps/kernel.sh), or `cd {} && apt-get download {package}={version}`", path.display(), dir.display())]
    KernelMissing {
        path: PathBuf,
        dir: PathBuf,
        package: String,
        version: String,
    },
    #[error("{}: {reason}", path.display())]
    KernelPackage { path: PathBuf, reason: String },
    #[error("board {board}: {reason}")]
    Board { board: String, reason: String },
    #[error("kernel module {module}: {reason}")]
    Module { module: String, reason: String },
    #[error("skerryd {}: {reason}", path.display())]
    Skerryd { path: PathBuf, reason: String },
    #[error("extension {}: {reason}", source_path.display())]
    Extension {
        source_path: PathBuf,
        reason: String,
    },
    #[error("{what}: {reason}")]
    Input { what: String, reason: String },
    #[error("the slot tree needs {needed} bytes but the slot partition {partition} holds {size}")]
    SlotTooSmall {
        partition: String,
        needed: u64,
        size: u64,
    },
}

impl ImageError {
    pub(crate) fn io(
        what: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> ImageError {
        let path = path.into();
        move |source| ImageError::Io { what, path, source }
    }
}
