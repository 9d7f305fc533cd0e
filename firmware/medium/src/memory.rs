//! [`MemoryMedium`]: bytes in memory that never lose power (for fuzzing and for reading
//! bytes that are already in memory through a store).

use std::path::{Path, PathBuf};

use crate::error::MediumError;
use crate::medium::Medium;

/// Bytes in memory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemoryMedium {
    bytes: Vec<u8>,
}

impl MemoryMedium {
    /// Memory holding `bytes`.
    pub fn new(bytes: Vec<u8>) -> Self {
        MemoryMedium { bytes }
    }

    /// The bytes as they are now.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

/// The path memory media report in errors.
pub fn memory_path() -> PathBuf {
    PathBuf::from("<memory>")
}

/// Reads `len` bytes at `offset` of `bytes`, or the error a short file gives.
pub(crate) fn slice_at(bytes: &[u8], offset: u64, len: usize) -> Result<Vec<u8>, MediumError> {
    let start = usize::try_from(offset).unwrap_or(usize::MAX);
    match start.checked_add(len) {
        Some(end) if end <= bytes.len() => Ok(bytes[start..end].to_vec()),
        _ => Err(MediumError::Io {
            action: "read",
            path: memory_path(),
            source: std::io::Error::from(std::io::ErrorKind::UnexpectedEof),
        }),
    }
}

/// Writes `data` at `offset` of `bytes`, growing it with zeros; refuses offsets that do
/// not fit in memory.
pub(crate) fn write_into(bytes: &mut Vec<u8>, offset: u64, data: &[u8]) -> Result<(), MediumError> {
    let end = usize::try_from(offset)
        .ok()
        .and_then(|s| s.checked_add(data.len()))
        .ok_or_else(|| MediumError::Unsupported {
            path: memory_path(),
            reason: format!("offset {offset} does not fit in memory"),
        })?;
    if bytes.len() < end {
        bytes.resize(end, 0);
    }
    bytes[end - data.len()..end].copy_from_slice(data);
    Ok(())
}

impl Medium for MemoryMedium {
    fn path(&self) -> &Path {
        Path::new("<memory>")
    }

    fn len(&self) -> Result<u64, MediumError> {
        Ok(self.bytes.len() as u64)
    }

    fn read_at(&self, offset: u64, len: usize) -> Result<Vec<u8>, MediumError> {
        slice_at(&self.bytes, offset, len)
    }

    fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<(), MediumError> {
        write_into(&mut self.bytes, offset, data)
    }

    fn flush(&mut self) -> Result<(), MediumError> {
        Ok(())
    }

    fn replace_all(&mut self, data: &[u8]) -> Result<(), MediumError> {
        self.bytes = data.to_vec();
        Ok(())
    }
}
