//! Slot guards, checked by the library before anything is written (so every caller, the
//! CLI and the daemon alike, gets them): the target slot must not be the seed, not the
//! booted slot, and not mounted — compared by identity (device and inode, or the block
//! device's number), not by spelling, so a symlink or a second device node is caught.
//! Then the caller's [`SlotActivation`] makes the slot unbootable before its first byte
//! is written, as RAUC marks a slot bad before it writes it.

use std::fs::Metadata;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::error::InstallError;

/// Where the kernel lists this process's mounts.
pub const MOUNTINFO: &str = "/proc/self/mountinfo";
/// Where a loop device names the file behind it (`loopN/loop/backing_file`).
pub const SYS_BLOCK: &str = "/sys/block";

/// Why the caller's hook could not make the slot unbootable.
pub type ActivationError = Box<dyn std::error::Error + Send + Sync>;

/// The caller's hold on the boot state of the slot being written.
///
/// [`deactivate`](Self::deactivate) is called once, after the guards passed and before
/// the first byte of the slot is written; the install never makes the slot bootable
/// again. The caller starts its trial only after [`install`](crate::install()) returned
/// `Ok`, so a half-written slot can never be started or left marked good.
pub trait SlotActivation {
    /// Makes the target slot one the bootloader will not start (mark it bad).
    fn deactivate(&mut self) -> Result<(), ActivationError>;
}

/// For a slot no bootloader knows about (image building, tests): nothing to change.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoBootState;

impl SlotActivation for NoBootState {
    fn deactivate(&mut self) -> Result<(), ActivationError> {
        Ok(())
    }
}

/// What makes a file or device the same slot, however it is named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Identity {
    /// A block device, by its device number.
    Device(u64),
    /// A regular file (or anything else), by filesystem device and inode.
    Inode { dev: u64, ino: u64 },
}

impl Identity {
    fn of(meta: &Metadata) -> Self {
        if meta.file_type().is_block_device() {
            Identity::Device(meta.rdev())
        } else {
            Identity::Inode {
                dev: meta.dev(),
                ino: meta.ino(),
            }
        }
    }
}

/// The identity of `path` (following links), or `None` when it does not exist yet.
fn identity(path: &Path) -> Result<Option<Identity>, InstallError> {
    match std::fs::metadata(path) {
        Ok(meta) => Ok(Some(Identity::of(&meta))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(InstallError::io("inspect", path)(e)),
    }
}

/// Refuses a target `slot` that is the `seed`, the `booted` slot, or mounted.
pub fn check_slot(
    slot: &Path,
    seed: Option<&Path>,
    booted: Option<&Path>,
) -> Result<(), InstallError> {
    let mounts = std::fs::read_to_string(MOUNTINFO)
        .map_err(InstallError::io("read the mount table", MOUNTINFO))?;
    check_slot_with(slot, seed, booted, &mounts, Path::new(SYS_BLOCK))
}

/// [`check_slot`] against a given mount table and `/sys/block` (tests pass their own).
pub fn check_slot_with(
    slot: &Path,
    seed: Option<&Path>,
    booted: Option<&Path>,
    mountinfo: &str,
    sys_block: &Path,
) -> Result<(), InstallError> {
    // A slot that does not exist yet is a new file: it is nothing else.
    let Some(target) = identity(slot)? else {
        return Ok(());
    };
    if let Some(seed) = seed {
        if identity(seed)? == Some(target) {
            return Err(InstallError::SlotIsSeed {
                slot: slot.into(),
                seed: seed.into(),
            });
        }
    }
    if let Some(booted) = booted {
        if identity(booted)? == Some(target) {
            return Err(InstallError::SlotIsBooted {
                slot: slot.into(),
                booted: booted.into(),
            });
        }
    }
    if let Some(mount_point) = mounted_at(target, mountinfo, sys_block) {
        return Err(InstallError::SlotMounted {
            slot: slot.into(),
            mount_point,
        });
    }
    Ok(())
}

/// One line of `/proc/self/mountinfo`.
#[derive(Debug, PartialEq, Eq)]
struct Mount {
    /// `major:minor` of the mounted filesystem's device.
    major: u32,
    minor: u32,
    mount_point: PathBuf,
    source: PathBuf,
}

/// Parses the lines it understands; a line it cannot read names no slot.
fn parse_mountinfo(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            let (major, minor) = fields.get(2)?.split_once(':')?;
            let mount_point = unescape(fields.get(4)?);
            // Optional fields end at "-"; then come the type and the source.
            let dash = fields.iter().position(|f| *f == "-")?;
            let source = unescape(fields.get(dash + 2)?);
            Some(Mount {
                major: major.parse().ok()?,
                minor: minor.parse().ok()?,
                mount_point: mount_point.into(),
                source: source.into(),
            })
        })
        .collect()
}

/// Undoes the kernel's octal escapes (`\040` for a space) in a mountinfo field.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let code = bytes.get(i + 1..i + 4).and_then(|d| {
            let s = std::str::from_utf8(d).ok()?;
            u8::from_str_radix(s, 8).ok()
        });
        match (bytes[i], code) {
            (b'\\', Some(c)) => {
                out.push(c);
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Where `target` is mounted: a block device whose number a mount names; a file that is
/// a mount's source, a mount point itself, or the backing file of a mounted loop device.
fn mounted_at(target: Identity, mountinfo: &str, sys_block: &Path) -> Option<PathBuf> {
    parse_mountinfo(mountinfo).into_iter().find_map(|m| {
        let hit = match target {
            Identity::Device(rdev) => {
                rustix::fs::major(rdev) == m.major && rustix::fs::minor(rdev) == m.minor
            }
            Identity::Inode { .. } => {
                let same = |p: &Path| matches!(identity(p), Ok(Some(id)) if id == target);
                let backing = loop_backing_file(&m.source, sys_block);
                (m.source.is_absolute() && same(&m.source))
                    || same(&m.mount_point)
                    || backing.as_deref().is_some_and(same)
            }
        };
        hit.then_some(m.mount_point)
    })
}

/// The file behind `/dev/loopN`, from `/sys/block/loopN/loop/backing_file`.
fn loop_backing_file(source: &Path, sys_block: &Path) -> Option<PathBuf> {
    let name = source.strip_prefix("/dev").ok()?.to_str()?;
    if !name.starts_with("loop") || name.contains('/') {
        return None;
    }
    let text = std::fs::read_to_string(sys_block.join(name).join("loop/backing_file")).ok()?;
    Some(PathBuf::from(text.trim_end_matches('\n')))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_mountinfo_with_optional_fields_and_escapes() {
        let text =
            "36 35 98:0 / /mnt/my\\040slot rw,noatime master:1 shared:2 - ext4 /dev/vdb1 rw\n\
                    garbage line\n";
        assert_eq!(
            parse_mountinfo(text),
            vec![Mount {
                major: 98,
                minor: 0,
                mount_point: "/mnt/my slot".into(),
                source: "/dev/vdb1".into(),
            }]
        );
    }

    #[test]
    fn a_block_device_is_mounted_when_a_mount_names_its_number() {
        let dev = Identity::Device(rustix::fs::makedev(179, 2));
        let table = "30 1 179:2 / / rw - ext4 /dev/root rw\n";
        assert_eq!(
            mounted_at(dev, table, Path::new("/nonexistent")),
            Some(PathBuf::from("/"))
        );
        let other = Identity::Device(rustix::fs::makedev(179, 3));
        assert_eq!(mounted_at(other, table, Path::new("/nonexistent")), None);
    }
}
