//! What can go wrong while flashing: a refusal (the command names something that must
//! not be written, checked before the first byte) or a failure on the way (I/O, a
//! verification mismatch). Refusals are usage errors (exit code 2); failures exit 1.

use std::path::PathBuf;

/// A flash that did not happen or did not finish.
#[derive(Debug, thiserror::Error)]
pub enum FlashError {
    /// The image or the target is one that must not be used; nothing was written.
    #[error("refusing to flash: {0}")]
    Refused(String),
    /// An I/O operation on a file or device failed.
    #[error("cannot {action} {}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// What was read back from the target differs from the image.
    #[error(
        "verification failed: {} differs from the image in the {len} bytes at offset {offset} \
         (the medium did not keep what was written; try another card or port)",
        target.display()
    )]
    Mismatch {
        target: PathBuf,
        offset: u64,
        len: u64,
    },
}

impl FlashError {
    /// A refusal with its reason.
    pub fn refused(why: impl Into<String>) -> Self {
        FlashError::Refused(why.into())
    }

    /// A closure turning an I/O error into [`FlashError::Io`] for `path`.
    pub fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> FlashError {
        let path = path.into();
        move |source| FlashError::Io {
            action,
            path,
            source,
        }
    }
}
