//! The checks made before the first byte is written: the image must be a non-empty
//! regular file; the target must not be the image, a directory, a character device, a
//! non-empty file (unless `--overwrite`), the disk the host runs from (or any partition
//! or volume on it: there is no `--force` for that), a mounted device or a disk with a
//! mounted partition, or a device held by device-mapper/RAID. Devices are compared by
//! number and files by device and inode, never by spelling.

use std::fs::Metadata;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use super::error::FlashError;
use super::sysblock::{parse_mountinfo, DevNum, Mount, SysBlock};

/// What to do with a target that is an existing, non-empty regular file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Existing {
    Refuse,
    Overwrite,
}

/// What the target is, once it passed the checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetKind {
    /// No file there yet: it is created.
    NewFile,
    /// A regular file, empty or to be overwritten: truncated, then written.
    File,
    /// A block device (a card, a USB stick, a disk), holding old data.
    BlockDevice(DevNum),
}

/// The host as the checks see it: its mounts and its block devices.
#[derive(Debug, Clone)]
pub struct Host {
    pub mounts: Vec<Mount>,
    pub sys: SysBlock,
}

impl Host {
    /// This machine, from `/proc/self/mountinfo` and `/sys`.
    pub fn current() -> Result<Self, FlashError> {
        let path = "/proc/self/mountinfo";
        let text = std::fs::read_to_string(path).map_err(FlashError::io("read", path))?;
        Ok(Host {
            mounts: parse_mountinfo(&text),
            sys: SysBlock::new("/sys"),
        })
    }

    /// The device of the filesystem at `/` (the last mount there is the one seen).
    fn root_device(&self) -> Option<(DevNum, &Mount)> {
        let root = self.mounts.iter().rev().find(|m| m.mount_point == "/")?;
        if root.dev.major != 0 {
            return Some((root.dev, root));
        }
        // Filesystems with anonymous numbers (btrfs) still name their device.
        let meta = std::fs::metadata(&root.source).ok()?;
        meta.file_type()
            .is_block_device()
            .then(|| (DevNum::of_rdev(meta.rdev()), root))
    }
}

/// Checks `image` and `target`; returns the image's size and what the target is.
pub fn check(
    image: &Path,
    target: &Path,
    existing: Existing,
    host: &Host,
) -> Result<(u64, TargetKind), FlashError> {
    let image_meta = image_metadata(image)?;
    let meta = match std::fs::metadata(target) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return new_file(target).map(|kind| (image_meta.len(), kind));
        }
        Err(e) => return Err(FlashError::io("inspect", target)(e)),
    };
    let same = |m: &Metadata| m.dev() == image_meta.dev() && m.ino() == image_meta.ino();
    let kind = meta.file_type();
    let shown = target.display();
    let kind = if same(&meta) {
        return Err(FlashError::refused(format!(
            "the target {shown} is the image {} itself",
            image.display()
        )));
    } else if kind.is_dir() {
        return Err(FlashError::refused(format!(
            "the target {shown} is a directory; name a disk device or an image file"
        )));
    } else if kind.is_char_device() {
        return Err(FlashError::refused(format!(
            "the target {shown} is a character device, not a disk (disks are block \
             devices such as /dev/sdb or /dev/mmcblk0; raw flash (MTD) is not supported)"
        )));
    } else if kind.is_block_device() {
        let dev = DevNum::of_rdev(meta.rdev());
        check_device(target, dev, &image_meta, host)?;
        let file = std::fs::File::open(target).map_err(FlashError::io("open", target))?;
        check_device_size(&file, target, image_meta.len())?;
        TargetKind::BlockDevice(dev)
    } else if kind.is_file() {
        check_file(target, &meta, existing)?;
        TargetKind::File
    } else {
        return Err(FlashError::refused(format!(
            "the target {shown} is neither a block device nor a regular file"
        )));
    };
    Ok((image_meta.len(), kind))
}

fn image_metadata(image: &Path) -> Result<Metadata, FlashError> {
    let shown = image.display();
    let meta = match std::fs::metadata(image) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(FlashError::refused(format!(
                "the image {shown} does not exist (build one with `skerryctl image build`)"
            )))
        }
        Err(e) => return Err(FlashError::io("inspect the image", image)(e)),
    };
    if !meta.is_file() {
        return Err(FlashError::refused(format!(
            "the image {shown} is not a regular file"
        )));
    }
    if meta.len() == 0 {
        return Err(FlashError::refused(format!("the image {shown} is empty")));
    }
    Ok(meta)
}

/// A target that does not exist yet: a new file, in a directory that must exist.
fn new_file(target: &Path) -> Result<TargetKind, FlashError> {
    let parent = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !parent.is_dir() {
        return Err(FlashError::refused(format!(
            "the target {} does not exist and its directory {} does not either",
            target.display(),
            parent.display()
        )));
    }
    Ok(TargetKind::NewFile)
}

fn check_file(target: &Path, meta: &Metadata, existing: Existing) -> Result<(), FlashError> {
    let shown = target.display();
    // A bind-mounted file, or the file behind a mounted loop device (the installer's
    // slot guard knows both).
    if let Err(e) = skerry_installer::guard::check_slot(target, None, None) {
        return Err(match e {
            skerry_installer::InstallError::SlotMounted { mount_point, .. } => {
                FlashError::refused(format!(
                    "the target {shown} is mounted at {} (a bind mount, or the file \
                     behind a mounted loop device); unmount it first",
                    mount_point.display()
                ))
            }
            other => FlashError::refused(format!("the target {shown}: {other}")),
        });
    }
    if meta.len() > 0 && existing == Existing::Refuse {
        return Err(FlashError::refused(format!(
            "the target {shown} is an existing file of {} bytes; pass --overwrite to \
             replace it",
            meta.len()
        )));
    }
    Ok(())
}

/// A device too small for the image is refused before anything (even --dry-run).
pub fn check_device_size(
    file: &std::fs::File,
    target: &Path,
    image_len: u64,
) -> Result<(), FlashError> {
    let size = rustix::fs::seek(file, rustix::fs::SeekFrom::End(0))
        .map_err(|e| FlashError::io("find the size of", target)(e.into()))?;
    if size < image_len {
        return Err(FlashError::refused(format!(
            "the target {} holds {size} bytes; the image needs {image_len}",
            target.display()
        )));
    }
    Ok(())
}

fn check_device(
    target: &Path,
    dev: DevNum,
    image: &Metadata,
    host: &Host,
) -> Result<(), FlashError> {
    let shown = target.display();
    let sys = &host.sys;
    if let Some((root, mount)) = host.root_device() {
        let host_disks = sys.disks_under(root);
        let target_disks = sys.disks_under(dev);
        if let Some(disk) = target_disks.iter().find(|d| host_disks.contains(d)) {
            return Err(FlashError::refused(format!(
                "the target {shown} ({dev}) is the disk the host runs from, or on it: / is \
                 {} ({root}) on disk {disk}; there is no option to override this",
                mount.source
            )));
        }
    }
    if let Some(backing) = sys.loop_backing_file(dev) {
        let same = std::fs::metadata(&backing)
            .is_ok_and(|m| m.dev() == image.dev() && m.ino() == image.ino());
        if same {
            return Err(FlashError::refused(format!(
                "the target {shown} is a loop device over the image itself ({})",
                backing.display()
            )));
        }
    }
    let holders = sys.holders(dev);
    let mut related: Vec<DevNum> = vec![dev];
    for part in sys.partitions(dev) {
        related.push(part);
        related.extend(sys.holders(part));
    }
    related.extend(&holders);
    if let Some(m) = host.mounts.iter().find(|m| related.contains(&m.dev)) {
        let what = if m.dev == dev {
            "is mounted".to_string()
        } else {
            format!("has {} ({}) mounted", m.source, m.dev)
        };
        return Err(FlashError::refused(format!(
            "the target {shown} ({dev}) {what} at {}; unmount every filesystem on it first",
            m.mount_point
        )));
    }
    if let Some(holder) = holders.first() {
        return Err(FlashError::refused(format!(
            "the target {shown} ({dev}) is in use by device {holder} (device-mapper, LVM \
             or RAID); deactivate it first"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(mountinfo: &str) -> Host {
        Host {
            mounts: parse_mountinfo(mountinfo),
            sys: SysBlock::new("/nonexistent"),
        }
    }

    #[test]
    fn the_root_device_is_the_last_mount_at_slash() {
        let h = host("1 0 8:1 / / rw - ext4 /dev/sda1 rw\n2 1 9:3 / / rw - ext4 /dev/md3 rw\n");
        assert_eq!(
            h.root_device().map(|(d, _)| d),
            Some(DevNum { major: 9, minor: 3 })
        );
    }

    #[test]
    fn a_device_with_a_mounted_number_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("disk.img");
        std::fs::write(&image, [1u8; 512]).unwrap();
        let meta = std::fs::metadata(&image).unwrap();
        let h = host(
            "1 0 8:1 / / rw - ext4 /dev/sda1 rw\n5 1 8:17 / /media/card rw - vfat /dev/sdb1 rw\n",
        );
        let err = check_device(
            Path::new("/dev/sdb1"),
            DevNum {
                major: 8,
                minor: 17,
            },
            &meta,
            &h,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("is mounted at /media/card"), "{err}");
        let err = check_device(
            Path::new("/dev/sda1"),
            DevNum { major: 8, minor: 1 },
            &meta,
            &h,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("the disk the host runs from"), "{err}");
        check_device(
            Path::new("/dev/sdc"),
            DevNum {
                major: 8,
                minor: 32,
            },
            &meta,
            &h,
        )
        .unwrap();
    }

    #[test]
    fn every_disk_under_a_device_mapper_root_is_the_host_disk() {
        let sys = crate::flash::sysblock::tests::fake_sys();
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("disk.img");
        std::fs::write(&image, [1u8; 512]).unwrap();
        let meta = std::fs::metadata(&image).unwrap();
        // / is an LVM volume (dm-0, 254:0) on sda2.
        let h = Host {
            mounts: parse_mountinfo("1 0 254:0 / / rw - ext4 /dev/mapper/vg-root rw\n"),
            sys: SysBlock::new(sys.path()),
        };
        for (name, minor) in [("/dev/sda", 0), ("/dev/sda1", 1)] {
            let err = check_device(Path::new(name), DevNum { major: 8, minor }, &meta, &h)
                .unwrap_err()
                .to_string();
            assert!(err.contains("the disk the host runs from"), "{name}: {err}");
        }
    }
}
