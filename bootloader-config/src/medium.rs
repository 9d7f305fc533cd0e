//! The bytes a store lives in: a file, a block device, or (in tests) memory that loses
//! power after a given number of written bytes.
//!
//! Backends do all their I/O through [`Medium`], so one torn-write test can cut every
//! backend's writes at every byte offset.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::store::StoreError;

/// Random-access bytes with an explicit flush, plus an atomic whole-file replace for media
/// that are regular files.
pub trait Medium {
    /// Where the bytes live, for error messages.
    fn path(&self) -> &Path;
    /// The current length in bytes.
    fn len(&self) -> Result<u64, StoreError>;
    /// Whether the medium holds no bytes at all.
    fn is_empty(&self) -> Result<bool, StoreError> {
        Ok(self.len()? == 0)
    }
    /// Reads `len` bytes at `offset`; fails if they are not all there.
    fn read_at(&self, offset: u64, len: usize) -> Result<Vec<u8>, StoreError>;
    /// Writes `data` at `offset` in place. Not atomic: a power cut can leave a prefix.
    fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<(), StoreError>;
    /// Makes every write so far durable.
    fn flush(&mut self) -> Result<(), StoreError>;
    /// Replaces the whole content atomically (temp file, fsync, rename, fsync the
    /// directory): after a power cut the old or the new content is there, never a mix.
    /// Block devices cannot do this and return [`StoreError::Unsupported`].
    fn replace_all(&mut self, data: &[u8]) -> Result<(), StoreError>;
    /// Reads everything.
    fn read_all(&self) -> Result<Vec<u8>, StoreError> {
        let len = usize::try_from(self.len()?).map_err(|_| StoreError::Unsupported {
            path: self.path().to_owned(),
            reason: "too large to read into memory".into(),
        })?;
        self.read_at(0, len)
    }
}

/// A regular file or a block device on the host.
#[derive(Debug)]
pub struct FileMedium {
    path: PathBuf,
}

impl FileMedium {
    /// Opens an existing file or device.
    pub fn open(path: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let path = path.into();
        std::fs::metadata(&path).map_err(|source| StoreError::Io {
            path: path.clone(),
            source,
        })?;
        Ok(FileMedium { path })
    }

    /// Names a file that may not exist yet (for `init`); it is created on first write.
    pub fn create(path: impl Into<PathBuf>) -> Self {
        FileMedium { path: path.into() }
    }

    fn io(&self, source: std::io::Error) -> StoreError {
        StoreError::Io {
            path: self.path.clone(),
            source,
        }
    }

    fn is_regular_file(&self) -> bool {
        std::fs::metadata(&self.path)
            .map(|m| m.is_file())
            .unwrap_or(true)
    }
}

impl Medium for FileMedium {
    fn path(&self) -> &Path {
        &self.path
    }

    fn len(&self) -> Result<u64, StoreError> {
        let mut file = File::open(&self.path).map_err(|e| self.io(e))?;
        // Seeking to the end works for block devices, whose metadata length is 0.
        file.seek(SeekFrom::End(0)).map_err(|e| self.io(e))
    }

    fn read_at(&self, offset: u64, len: usize) -> Result<Vec<u8>, StoreError> {
        let mut file = File::open(&self.path).map_err(|e| self.io(e))?;
        file.seek(SeekFrom::Start(offset)).map_err(|e| self.io(e))?;
        let mut buf = vec![0u8; len];
        file.read_exact(&mut buf).map_err(|e| self.io(e))?;
        Ok(buf)
    }

    fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<(), StoreError> {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&self.path)
            .map_err(|e| self.io(e))?;
        file.seek(SeekFrom::Start(offset)).map_err(|e| self.io(e))?;
        file.write_all(data).map_err(|e| self.io(e))?;
        file.sync_data().map_err(|e| self.io(e))
    }

    fn flush(&mut self) -> Result<(), StoreError> {
        let file = OpenOptions::new()
            .write(true)
            .open(&self.path)
            .map_err(|e| self.io(e))?;
        file.sync_all().map_err(|e| self.io(e))
    }

    fn replace_all(&mut self, data: &[u8]) -> Result<(), StoreError> {
        if !self.is_regular_file() {
            return Err(StoreError::Unsupported {
                path: self.path.clone(),
                reason: "an atomic replace needs a regular file, not a device".into(),
            });
        }
        let dir = match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
            _ => PathBuf::from("."),
        };
        let mut temp = tempfile::NamedTempFile::new_in(&dir).map_err(|e| self.io(e))?;
        temp.write_all(data).map_err(|e| self.io(e))?;
        temp.as_file().sync_all().map_err(|e| self.io(e))?;
        // Keep the old file's mode; a new file gets 0644 like any file a tool creates,
        // not the temp file's private 0600.
        let permissions = match std::fs::metadata(&self.path) {
            Ok(meta) => meta.permissions(),
            Err(_) => std::os::unix::fs::PermissionsExt::from_mode(0o644),
        };
        temp.as_file()
            .set_permissions(permissions)
            .map_err(|e| self.io(e))?;
        temp.persist(&self.path).map_err(|e| self.io(e.error))?;
        File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| self.io(e))
    }
}

/// Memory that loses power after `budget` more bytes are written: a write that crosses
/// the budget lands only its first bytes, and a `replace_all` that does not fit lands
/// nothing (the rename never happened). Used by the torn-write tests.
#[derive(Debug, Clone)]
pub struct PowerCutMedium {
    bytes: Vec<u8>,
    budget: Option<usize>,
    written: usize,
}

impl PowerCutMedium {
    /// Memory holding `bytes`, with power that never fails.
    pub fn new(bytes: Vec<u8>) -> Self {
        PowerCutMedium {
            bytes,
            budget: None,
            written: 0,
        }
    }

    /// Cuts power after `budget` more written bytes.
    pub fn cut_after(&mut self, budget: usize) {
        self.budget = Some(budget);
    }

    /// Bytes written since creation (or since the last [`cut_after`](Self::cut_after)).
    pub fn written(&self) -> usize {
        self.written
    }

    /// The bytes as they are now.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Restores power, keeping whatever landed.
    pub fn power_on(&mut self) {
        self.budget = None;
        self.written = 0;
    }

    fn allowance(&self, wanted: usize) -> usize {
        match self.budget {
            Some(b) => wanted.min(b.saturating_sub(self.written)),
            None => wanted,
        }
    }

    fn power_lost(&self) -> StoreError {
        StoreError::Io {
            path: PathBuf::from("<memory>"),
            source: std::io::Error::other("power cut (simulated)"),
        }
    }
}

impl Medium for PowerCutMedium {
    fn path(&self) -> &Path {
        Path::new("<memory>")
    }

    fn len(&self) -> Result<u64, StoreError> {
        Ok(self.bytes.len() as u64)
    }

    fn read_at(&self, offset: u64, len: usize) -> Result<Vec<u8>, StoreError> {
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        match start.checked_add(len) {
            Some(end) if end <= self.bytes.len() => Ok(self.bytes[start..end].to_vec()),
            _ => Err(StoreError::Io {
                path: PathBuf::from("<memory>"),
                source: std::io::Error::from(std::io::ErrorKind::UnexpectedEof),
            }),
        }
    }

    fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<(), StoreError> {
        let start = usize::try_from(offset).map_err(|_| self.power_lost())?;
        let n = self.allowance(data.len());
        if self.bytes.len() < start + n {
            self.bytes.resize(start + n, 0);
        }
        self.bytes[start..start + n].copy_from_slice(&data[..n]);
        self.written += n;
        if n < data.len() {
            return Err(self.power_lost());
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StoreError> {
        match self.budget {
            Some(b) if self.written >= b => Err(self.power_lost()),
            _ => Ok(()),
        }
    }

    fn replace_all(&mut self, data: &[u8]) -> Result<(), StoreError> {
        if self.allowance(data.len()) < data.len() {
            self.written = self.budget.unwrap_or(self.written);
            return Err(self.power_lost());
        }
        self.bytes = data.to_vec();
        self.written += data.len();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn power_cut_lands_a_prefix() {
        let mut m = PowerCutMedium::new(vec![0; 8]);
        m.cut_after(3);
        assert!(m.write_at(2, &[1, 2, 3, 4, 5]).is_err());
        assert_eq!(m.bytes(), &[0, 0, 1, 2, 3, 0, 0, 0]);
        assert!(m.write_at(0, &[9]).is_err());
        assert_eq!(m.bytes()[0], 0);
    }

    #[test]
    fn replace_all_is_all_or_nothing() {
        let mut m = PowerCutMedium::new(vec![7; 4]);
        m.cut_after(3);
        assert!(m.replace_all(&[1; 6]).is_err());
        assert_eq!(m.bytes(), &[7; 4]);
        m.power_on();
        m.replace_all(&[1; 6]).unwrap();
        assert_eq!(m.bytes(), &[1; 6]);
    }

    #[test]
    fn file_medium_replaces_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("env");
        let mut m = FileMedium::create(&path);
        m.replace_all(b"hello").unwrap();
        m.write_at(1, b"EL").unwrap();
        assert_eq!(m.read_all().unwrap(), b"hELlo");
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&path).unwrap().permissions(),
        );
        assert_eq!(mode & 0o777, 0o644);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
