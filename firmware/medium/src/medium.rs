//! [`Medium`]: the bytes one store lives in, and [`FsMedium`], a medium that is one file
//! of a [`Directory`] ([`FileMedium`] on the host).

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

use crate::atomic::replace_file;
use crate::dir::{split, Directory, HostDir};
use crate::error::MediumError;

/// The most bytes [`Medium::read_all`] reads into memory.
pub const READ_ALL_LIMIT: u64 = 256 << 20;

/// Random-access bytes with an explicit flush, plus an atomic whole-file replace for media
/// that are regular files.
pub trait Medium {
    /// Where the bytes live, for error messages.
    fn path(&self) -> &Path;
    /// The current length in bytes.
    fn len(&self) -> Result<u64, MediumError>;
    /// Whether the medium holds no bytes at all.
    fn is_empty(&self) -> Result<bool, MediumError> {
        Ok(self.len()? == 0)
    }
    /// Reads `len` bytes at `offset`; fails if they are not all there.
    fn read_at(&self, offset: u64, len: usize) -> Result<Vec<u8>, MediumError>;
    /// Writes `data` at `offset` in place. Neither atomic nor durable: a power cut can
    /// leave any subset of its sectors, until [`flush`](Self::flush).
    fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<(), MediumError>;
    /// Makes every write so far durable (and the file's existence, if it was created).
    fn flush(&mut self) -> Result<(), MediumError>;
    /// Replaces the whole content atomically and durably (see [`crate::atomic`]): after
    /// a power cut the old or the new content is there, never a mix. Block devices
    /// cannot do this and return [`MediumError::Unsupported`].
    fn replace_all(&mut self, data: &[u8]) -> Result<(), MediumError>;
    /// Reads everything, refusing more than [`READ_ALL_LIMIT`] bytes.
    fn read_all(&self) -> Result<Vec<u8>, MediumError> {
        let len = self.len()?;
        let too_large = || MediumError::TooLarge {
            path: self.path().to_owned(),
            len,
            limit: READ_ALL_LIMIT,
        };
        if len > READ_ALL_LIMIT {
            return Err(too_large());
        }
        self.read_at(0, usize::try_from(len).map_err(|_| too_large())?)
    }
    /// Another file in the same directory (a store's second copy), if this medium is a
    /// file in a directory (not memory, not a block device).
    fn sibling(&self, _name: &str) -> Option<Self>
    where
        Self: Sized,
    {
        None
    }
}

/// One file of a [`Directory`].
#[derive(Debug, Clone)]
pub struct FsMedium<D: Directory> {
    dir: D,
    name: OsString,
    path: PathBuf,
    /// Set when a write created the file: its directory entry then needs a sync too.
    created: bool,
}

/// A regular file or a block device on the host.
pub type FileMedium = FsMedium<HostDir>;

impl FsMedium<HostDir> {
    /// Opens an existing regular file or block device; anything else (a directory, a
    /// FIFO) is refused with an error saying what it is.
    pub fn open(path: impl Into<PathBuf>) -> Result<Self, MediumError> {
        let medium = Self::create(path);
        medium.len()?;
        Ok(medium)
    }

    /// Names a file that may not exist yet (for `init`); it is created on first write.
    /// A path that names no file (`/`, `..`) stands for itself and fails when used.
    pub fn create(path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        match split(&path) {
            Ok((dir, name)) => {
                let name = name.to_os_string();
                FsMedium::in_dir(HostDir::new(dir), name)
            }
            Err(_) => FsMedium {
                dir: HostDir::new(&path),
                name: OsString::new(),
                path,
                created: false,
            },
        }
    }
}

impl<D: Directory> FsMedium<D> {
    /// The file `name` of `dir`.
    pub fn in_dir(dir: D, name: impl Into<OsString>) -> Self {
        let name = name.into();
        let path = dir.path().join(&name);
        FsMedium {
            dir,
            name,
            path,
            created: false,
        }
    }

    /// The directory the file is in.
    pub fn dir(&self) -> &D {
        &self.dir
    }

    /// Gives the directory back.
    pub fn into_dir(self) -> D {
        self.dir
    }

    fn name(&self) -> &OsStr {
        &self.name
    }
}

impl<D: Directory + Clone> Medium for FsMedium<D> {
    fn path(&self) -> &Path {
        &self.path
    }

    fn len(&self) -> Result<u64, MediumError> {
        self.dir.len(self.name())
    }

    fn read_at(&self, offset: u64, len: usize) -> Result<Vec<u8>, MediumError> {
        self.dir.read_at(self.name(), offset, len)
    }

    fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<(), MediumError> {
        if !self.dir.exists(&self.name) {
            self.created = true;
        }
        self.dir.write_at(&self.name, offset, data)
    }

    fn flush(&mut self) -> Result<(), MediumError> {
        self.dir.sync_file(&self.name)?;
        if self.created {
            self.dir.sync_dir()?;
            self.created = false;
        }
        Ok(())
    }

    fn replace_all(&mut self, data: &[u8]) -> Result<(), MediumError> {
        if self.dir.is_block_device(&self.name) {
            return Err(MediumError::Unsupported {
                path: self.path.clone(),
                reason: "an atomic replace needs a regular file, not a device".into(),
            });
        }
        let name = self.name.clone();
        replace_file(&mut self.dir, &name, data)?;
        self.created = false;
        Ok(())
    }

    /// None for a block device: the directory it is in (`/dev`) holds no copies.
    fn sibling(&self, name: &str) -> Option<Self> {
        if self.dir.is_block_device(&self.name) {
            return None;
        }
        Some(FsMedium::in_dir(self.dir.clone(), name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_medium_replaces_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("env");
        let mut m = FileMedium::create(&path);
        m.replace_all(b"hello").unwrap();
        m.write_at(1, b"EL").unwrap();
        m.flush().unwrap();
        assert_eq!(m.read_all().unwrap(), b"hELlo");
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&path).unwrap().permissions(),
        );
        assert_eq!(mode & 0o777, 0o644);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_directory_is_refused_by_name_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let err = FileMedium::open(dir.path()).unwrap_err();
        assert!(err.to_string().contains("directory"), "{err}");
        let m = FileMedium::create(dir.path());
        let err = m.read_all().unwrap_err();
        assert!(matches!(err, MediumError::Unsupported { .. }), "{err}");
        assert!(err.to_string().contains("a directory"), "{err}");
    }

    #[test]
    fn a_fifo_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        assert!(
            made.is_ok_and(|s| s.success()),
            "mkfifo (coreutils) is needed"
        );
        let err = FileMedium::open(&fifo).unwrap_err();
        assert!(err.to_string().contains("neither a regular file"), "{err}");
    }

    #[test]
    fn a_block_device_has_no_sibling_copies() {
        let dir = tempfile::tempdir().unwrap();
        let node = dir.path().join("blk");
        // A node for loop device 0 (block major 7); it needs no attached image.
        let made = std::process::Command::new("mknod")
            .arg(&node)
            .args(["b", "7", "0"])
            .status();
        assert!(
            made.is_ok_and(|s| s.success()),
            "mknod (coreutils, as root) is needed"
        );
        let device = FileMedium::create(&node);
        assert!(device.sibling("blk.b").is_none());
        let file = FileMedium::create(dir.path().join("grubenv"));
        assert!(file.sibling("grubenv.b").is_some());
    }

    #[test]
    fn read_all_is_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big");
        let f = std::fs::File::create(&path).unwrap();
        f.set_len(READ_ALL_LIMIT + 1).unwrap();
        let err = FileMedium::open(&path).unwrap().read_all().unwrap_err();
        assert!(matches!(err, MediumError::TooLarge { .. }), "{err}");
    }
}
