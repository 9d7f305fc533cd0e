//! [`Directory`]: a directory of named files with explicit durability, and
//! [`HostDir`], the one on the host's filesystem.
//!
//! Everything that persists state in Skerry writes through this trait, so the same code
//! runs on the host and, in tests, on the lossy page-cache model
//! (`skerry_medium::lossy`, feature `test-support`) that loses what was not made durable.
//!
//! Durability rules every implementation follows (POSIX on a journaling filesystem):
//! a write is durable once its file is synced; a file's existence, a rename and a
//! removal are durable once the directory is synced.

use std::ffi::OsStr;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::error::MediumError;

/// The mode a new file gets, like any file a tool creates (not a temp file's 0600).
pub const NEW_FILE_MODE: u32 = 0o644;

/// A directory of named files.
pub trait Directory {
    /// Where the directory is, for error messages.
    fn path(&self) -> &Path;
    /// The length of `name`; an `Io` error with `NotFound` if it does not exist.
    fn len(&self, name: &OsStr) -> Result<u64, MediumError>;
    /// Reads exactly `len` bytes of `name` at `offset`.
    fn read_at(&self, name: &OsStr, offset: u64, len: usize) -> Result<Vec<u8>, MediumError>;
    /// Writes `data` into `name` at `offset`, creating the file (mode
    /// [`NEW_FILE_MODE`]) if it does not exist. Not durable until [`sync_file`](Self::sync_file).
    fn write_at(&mut self, name: &OsStr, offset: u64, data: &[u8]) -> Result<(), MediumError>;
    /// Creates or truncates `name` and writes `data`, with the permissions `like` has
    /// (or [`NEW_FILE_MODE`] when `like` does not exist).
    fn write_new(&mut self, name: &OsStr, like: &OsStr, data: &[u8]) -> Result<(), MediumError>;
    /// Cuts or extends `name` to `len` bytes.
    fn set_len(&mut self, name: &OsStr, len: u64) -> Result<(), MediumError>;
    /// Makes the content and length of `name` durable.
    fn sync_file(&mut self, name: &OsStr) -> Result<(), MediumError>;
    /// Renames `from` over `to`.
    fn rename(&mut self, from: &OsStr, to: &OsStr) -> Result<(), MediumError>;
    /// Removes `name`.
    fn remove(&mut self, name: &OsStr) -> Result<(), MediumError>;
    /// Makes every creation, rename and removal so far durable.
    fn sync_dir(&mut self) -> Result<(), MediumError>;
    /// Whether `name` exists.
    fn exists(&self, name: &OsStr) -> bool {
        self.len(name).is_ok()
    }
    /// Whether `name` is a block device, which can be written in place but not replaced.
    fn is_block_device(&self, _name: &OsStr) -> bool {
        false
    }
}

/// A directory on the host's filesystem. Its files may also be block devices (`/dev`).
#[derive(Debug, Clone)]
pub struct HostDir {
    dir: PathBuf,
}

impl HostDir {
    /// The directory at `dir` (not checked until used).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        HostDir { dir: dir.into() }
    }

    fn file(&self, name: &OsStr) -> PathBuf {
        self.dir.join(name)
    }

    /// Refuses anything but a regular file or a block device, so a directory or a FIFO
    /// gets a clear error instead of a length of `i64::MAX` or a read that never ends.
    fn check_kind(&self, path: &Path) -> Result<std::fs::Metadata, MediumError> {
        let meta = std::fs::metadata(path).map_err(MediumError::io("read", path))?;
        let kind = meta.file_type();
        if kind.is_file() || kind.is_block_device() {
            return Ok(meta);
        }
        let what = if kind.is_dir() {
            "a directory"
        } else if kind.is_char_device() {
            "a character device"
        } else {
            "neither a regular file nor a block device"
        };
        Err(MediumError::Unsupported {
            path: path.to_owned(),
            reason: format!("it is {what}; give the path of a file or a block device"),
        })
    }

    /// Names the directory, not the temporary file, when it is the directory that is
    /// missing (`grub:/no/such/dir/grubenv` should say so).
    fn create_error(&self, path: &Path, source: std::io::Error) -> MediumError {
        if source.kind() == std::io::ErrorKind::NotFound && !self.dir.is_dir() {
            return MediumError::Unsupported {
                path: self.dir.clone(),
                reason: "the directory does not exist; create it first".into(),
            };
        }
        MediumError::io("create", path)(source)
    }

    fn open_existing(&self, name: &OsStr, write: bool) -> Result<File, MediumError> {
        let path = self.file(name);
        self.check_kind(&path)?;
        OpenOptions::new()
            .read(true)
            .write(write)
            .open(&path)
            .map_err(MediumError::io("open", &path))
    }
}

impl Directory for HostDir {
    fn path(&self) -> &Path {
        &self.dir
    }

    fn len(&self, name: &OsStr) -> Result<u64, MediumError> {
        let path = self.file(name);
        let meta = self.check_kind(&path)?;
        if meta.file_type().is_file() {
            return Ok(meta.len());
        }
        // A block device's metadata length is 0; seeking to its end gives its size.
        let mut file = self.open_existing(name, false)?;
        file.seek(SeekFrom::End(0))
            .map_err(MediumError::io("find the size of", &path))
    }

    fn read_at(&self, name: &OsStr, offset: u64, len: usize) -> Result<Vec<u8>, MediumError> {
        let path = self.file(name);
        let mut file = self.open_existing(name, false)?;
        file.seek(SeekFrom::Start(offset))
            .map_err(MediumError::io("seek in", &path))?;
        let mut buf = vec![0u8; len];
        file.read_exact(&mut buf)
            .map_err(MediumError::io("read", &path))?;
        Ok(buf)
    }

    fn write_at(&mut self, name: &OsStr, offset: u64, data: &[u8]) -> Result<(), MediumError> {
        let path = self.file(name);
        if path.exists() {
            self.check_kind(&path)?;
        }
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(NEW_FILE_MODE)
            .open(&path)
            .map_err(MediumError::io("open", &path))?;
        file.seek(SeekFrom::Start(offset))
            .map_err(MediumError::io("seek in", &path))?;
        file.write_all(data)
            .map_err(MediumError::io("write", &path))
    }

    fn write_new(&mut self, name: &OsStr, like: &OsStr, data: &[u8]) -> Result<(), MediumError> {
        let path = self.file(name);
        let mode = match std::fs::metadata(self.file(like)) {
            Ok(meta) => meta.permissions().mode() & 0o7777,
            Err(_) => NEW_FILE_MODE,
        };
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&path)
            .map_err(|source| self.create_error(&path, source))?;
        // The umask applied at creation may have narrowed the mode; set it exactly.
        file.set_permissions(std::fs::Permissions::from_mode(mode))
            .map_err(MediumError::io("set the mode of", &path))?;
        file.write_all(data)
            .map_err(MediumError::io("write", &path))
    }

    fn set_len(&mut self, name: &OsStr, len: u64) -> Result<(), MediumError> {
        let path = self.file(name);
        self.open_existing(name, true)?
            .set_len(len)
            .map_err(MediumError::io("resize", &path))
    }

    fn sync_file(&mut self, name: &OsStr) -> Result<(), MediumError> {
        let path = self.file(name);
        self.open_existing(name, true)?
            .sync_all()
            .map_err(MediumError::io("sync", &path))
    }

    fn rename(&mut self, from: &OsStr, to: &OsStr) -> Result<(), MediumError> {
        let to = self.file(to);
        std::fs::rename(self.file(from), &to).map_err(MediumError::io("replace", to))
    }

    fn remove(&mut self, name: &OsStr) -> Result<(), MediumError> {
        let path = self.file(name);
        std::fs::remove_file(&path).map_err(MediumError::io("remove", path))
    }

    fn is_block_device(&self, name: &OsStr) -> bool {
        std::fs::metadata(self.file(name)).is_ok_and(|m| m.file_type().is_block_device())
    }

    fn sync_dir(&mut self) -> Result<(), MediumError> {
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(MediumError::io("sync the directory", &self.dir))
    }
}

/// Splits a file path into its directory (`.` for a bare name) and its name.
pub fn split(path: &Path) -> Result<(PathBuf, &OsStr), MediumError> {
    let name = path.file_name().ok_or_else(|| MediumError::Unsupported {
        path: path.to_owned(),
        reason: "it names no file".into(),
    })?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    Ok((dir, name))
}
