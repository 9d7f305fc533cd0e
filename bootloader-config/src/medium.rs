//! The bytes a store lives in: a file, a block device, or memory. The media themselves
//! live in the workspace's `skerry-medium` crate (shared with the runtime's log and the
//! installer's state); this module re-exports them and turns their errors into
//! [`StoreError`]s.

#[cfg(feature = "test-support")]
pub use skerry_medium::PowerCutMedium;
pub use skerry_medium::{FileMedium, FsMedium, Medium, MediumError, MemoryMedium};

use crate::store::StoreError;

impl From<MediumError> for StoreError {
    fn from(e: MediumError) -> Self {
        match e {
            MediumError::Io { path, source, .. } => StoreError::Io { path, source },
            MediumError::Unsupported { path, reason } => StoreError::Unsupported { path, reason },
            MediumError::TooLarge { path, len, limit } => StoreError::Unsupported {
                path,
                reason: format!("it holds {len} bytes, more than the {limit} a store reads"),
            },
        }
    }
}
