//! The state partition on first boot: grow it to the end of the disk ([`super::gpt`]),
//! tell the kernel ([`super::blkpg`]), and create its ext4 filesystem with the slot's
//! `/usr/sbin/mke2fs` when it holds none. A partition that already holds ext4 is never
//! formatted again.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use skerryd_core::partitions::BlockPartition;

use super::gpt::{self, Grown};

/// The program that formats `/var`, in the slot (docs/os-image.md).
pub const MKE2FS: &str = "/usr/sbin/mke2fs";
/// The ext4 (ext2/3) superblock magic, at byte 1024 + 0x38.
const EXT_MAGIC: u16 = 0xEF53;

/// Why the state partition could not be made ready.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Reading the partition failed.
    #[error("cannot read {path}")]
    Read {
        /// The device or file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Growing the partition failed.
    #[error(transparent)]
    Grow(#[from] gpt::GptError),
    /// mke2fs could not be run or failed.
    #[error("formatting {path} with {mke2fs} failed: {message}")]
    Format {
        /// The device or file.
        path: PathBuf,
        /// The program.
        mke2fs: PathBuf,
        /// Its exit status and error output.
        message: String,
    },
}

/// Whether `path` at byte `offset` holds an ext2/3/4 superblock.
pub fn has_ext4(path: &Path, offset: u64) -> Result<bool, StateError> {
    let read = |source| StateError::Read {
        path: path.to_owned(),
        source,
    };
    let file = File::open(path).map_err(read)?;
    let mut magic = [0u8; 2];
    match file.read_exact_at(&mut magic, offset + 1024 + 0x38) {
        Ok(()) => Ok(u16::from_le_bytes(magic) == EXT_MAGIC),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(false),
        Err(e) => Err(read(e)),
    }
}

/// A filesystem to make: on `path`, or on `size` bytes at `offset` inside it (an
/// image file in tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormatTarget {
    /// The block device or file.
    pub path: PathBuf,
    /// Where the partition starts and how long it is, inside a file.
    pub within: Option<(u64, u64)>,
}

/// Creates ext4 labelled `var` on `target` with `mke2fs`.
pub fn format_ext4(mke2fs: &Path, target: &FormatTarget) -> Result<(), StateError> {
    let fail = |message: String| StateError::Format {
        path: target.path.clone(),
        mke2fs: mke2fs.to_owned(),
        message,
    };
    let mut command = Command::new(mke2fs);
    command.args(["-q", "-F", "-t", "ext4", "-L", "var"]);
    if let Some((offset, _)) = target.within {
        command.arg("-E").arg(format!("offset={offset}"));
    }
    command.arg(&target.path);
    if let Some((_, size)) = target.within {
        command.arg(format!("{}k", size / 1024));
    }
    let out = command
        .output()
        .map_err(|e| fail(format!("cannot run it: {e}")))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(fail(format!("{}: {}", out.status, stderr.trim())));
    }
    Ok(())
}

/// What happened to the state partition at this boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VarOutcome {
    /// It had no filesystem and got one.
    Formatted,
    /// It had one already.
    Kept,
}

/// The logical sector size of `disk` (`/dev/vda`) from sysfs; 512 if unknown.
fn sector_size(sys_block: &Path, disk: &Path) -> u64 {
    let Some(name) = disk.file_name() else {
        return 512;
    };
    let path = sys_block.join(name).join("queue/logical_block_size");
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .filter(|s| (512..=4096).contains(s))
        .unwrap_or(512)
}

/// Grows the state partition to the end of its disk and formats it if it holds no
/// filesystem. `log` gets one line per step worth telling the console.
pub fn prepare(
    partition: &BlockPartition,
    sys_block: &Path,
    mke2fs: &Path,
    log: &mut dyn FnMut(String),
) -> Result<VarOutcome, StateError> {
    let read = |source| StateError::Read {
        path: partition.disk.clone(),
        source,
    };
    let disk = File::options()
        .read(true)
        .write(true)
        .open(&partition.disk)
        .map_err(read)?;
    let disk_bytes = std::io::Seek::seek(&mut &disk, std::io::SeekFrom::End(0)).map_err(read)?;
    let sector = sector_size(sys_block, &partition.disk);
    match gpt::grow_last(&disk, &partition.disk, disk_bytes, sector, partition.number)? {
        Grown::AlreadyFull => {}
        Grown::To { first, last } => {
            let length = (last - first + 1) * sector;
            log(format!(
                "grew {} to the end of {} ({} MiB)",
                partition.device.display(),
                partition.disk.display(),
                length >> 20
            ));
            if let Err(e) =
                super::blkpg::resize_partition(&disk, partition.number, first * sector, length)
            {
                log(format!(
                    "the kernel was not told the new size of {} ({e}); it takes the old one until the next boot",
                    partition.device.display()
                ));
            }
        }
    }
    drop(disk);
    if has_ext4(&partition.device, 0)? {
        return Ok(VarOutcome::Kept);
    }
    format_ext4(
        mke2fs,
        &FormatTarget {
            path: partition.device.clone(),
            within: None,
        },
    )?;
    Ok(VarOutcome::Formatted)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1024 * 1024;

    #[test]
    fn first_boot_formats_a_partition_in_a_file_and_only_once() {
        let mke2fs = Path::new(MKE2FS);
        assert!(
            mke2fs.exists(),
            "{MKE2FS} is missing: apt-get install e2fsprogs (scripts/deps/pid1.apt)"
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("disk.img");
        let file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .unwrap();
        file.set_len(32 * MIB).unwrap();
        // Something before the partition that a format must not touch.
        file.write_all_at(b"slot bytes", 8 * MIB - 10).unwrap();
        let target = FormatTarget {
            path: path.clone(),
            within: Some((8 * MIB, 16 * MIB)),
        };
        assert!(!has_ext4(&path, 8 * MIB).unwrap());
        format_ext4(mke2fs, &target).unwrap();
        assert!(has_ext4(&path, 8 * MIB).unwrap());
        let mut before = [0u8; 10];
        file.read_exact_at(&mut before, 8 * MIB - 10).unwrap();
        assert_eq!(&before, b"slot bytes");
        // The filesystem is 16 MiB and labelled var (dumpe2fs reads it back).
        let image = dir.path().join("part.img");
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&image, &bytes[(8 * MIB) as usize..(24 * MIB) as usize]).unwrap();
        let out = Command::new("dumpe2fs")
            .arg("-h")
            .arg(&image)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("Filesystem volume name:   var"), "{text}");
        assert!(
            text.contains("Block count:              4096")
                || text.contains("Block count:              16384"),
            "{text}"
        );
        // A short file holds no superblock (not an error).
        let short = dir.path().join("short");
        std::fs::write(&short, b"x").unwrap();
        assert!(!has_ext4(&short, 0).unwrap());
    }

    #[test]
    fn a_failing_mke2fs_is_named_with_its_error() {
        let target = FormatTarget {
            path: "/nonexistent/dev".into(),
            within: None,
        };
        let error = format_ext4(Path::new(MKE2FS), &target)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("/nonexistent/dev") && error.contains(MKE2FS),
            "{error}"
        );
        let error = format_ext4(Path::new("/no/mke2fs"), &target)
            .unwrap_err()
            .to_string();
        assert!(error.contains("cannot run it"), "{error}");
    }
}
