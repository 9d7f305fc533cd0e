//! Opening the target once it passed the checks: a file is created or truncated and
//! sized to the image, so every byte not written reads as zero; a block device is opened
//! exclusively (the kernel refuses while anything holds it: a mount, swap, a mapper) and
//! must be at least the image's size. Free space is checked before a file is written.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::error::FlashError;
use super::refuse::TargetKind;

/// What the target's unwritten bytes hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Zeros {
    /// Zeros by definition (a new or truncated file): zero runs are skipped.
    Guaranteed,
    /// Whatever was there before: zero runs are read and written where not zero.
    Unknown,
}

/// An open target, ready to be written.
#[derive(Debug)]
pub struct Target {
    pub path: PathBuf,
    pub file: File,
    pub zeros: Zeros,
}

/// Opens `path` as `kind` for an image of `image_len` bytes with `data_len` bytes of data.
pub fn open(
    path: &Path,
    kind: TargetKind,
    image_len: u64,
    data_len: u64,
) -> Result<Target, FlashError> {
    let file = match kind {
        TargetKind::NewFile | TargetKind::File => open_file(path, kind, image_len, data_len)?,
        TargetKind::BlockDevice(_) => open_device(path, image_len)?,
    };
    let zeros = match kind {
        TargetKind::BlockDevice(_) => Zeros::Unknown,
        _ => Zeros::Guaranteed,
    };
    Ok(Target {
        path: path.into(),
        file,
        zeros,
    })
}

fn open_file(
    path: &Path,
    kind: TargetKind,
    image_len: u64,
    data_len: u64,
) -> Result<File, FlashError> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let fs = rustix::fs::statvfs(dir).map_err(|e| FlashError::io("inspect", dir)(e.into()))?;
    let free = fs.f_bavail.saturating_mul(fs.f_frsize);
    if free < data_len {
        return Err(FlashError::refused(format!(
            "the filesystem of {} has {free} bytes free; the image's data needs {data_len}",
            path.display()
        )));
    }
    let mut options = OpenOptions::new();
    options.read(true).write(true);
    match kind {
        TargetKind::NewFile => options.create_new(true),
        _ => options.truncate(true),
    };
    let file = options.open(path).map_err(FlashError::io("open", path))?;
    file.set_len(image_len)
        .map_err(FlashError::io("size", path))?;
    Ok(file)
}

fn open_device(path: &Path, image_len: u64) -> Result<File, FlashError> {
    let excl = rustix::fs::OFlags::EXCL.bits() as i32;
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(excl)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(code) if code == rustix::io::Errno::BUSY.raw_os_error() => {
                FlashError::refused(format!(
                    "the target {} is in use (mounted, used as swap, or held by \
                     device-mapper or RAID); the kernel refused to open it exclusively",
                    path.display()
                ))
            }
            _ => FlashError::io("open", path)(e),
        })?;
    // Checked before; again on the device now held, in case it changed.
    super::refuse::check_device_size(&file, path, image_len)?;
    Ok(file)
}
