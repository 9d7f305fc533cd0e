//! The block devices around a target, as the kernel lists them: mounts from
//! `/proc/self/mountinfo` (by `major:minor`), and from `/sys/dev/block` a device's whole
//! disk, its partitions, what it is built on (`slaves`: the disks under an LVM or RAID
//! root) and what is built on it (`holders`). Paths are parameters so tests pass fakes.

use std::fmt;
use std::path::{Path, PathBuf};

/// How deep device-mapper/RAID stacks are followed (real stacks are 2–3 deep).
const MAX_DEPTH: usize = 8;

/// A block device's number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct DevNum {
    pub major: u32,
    pub minor: u32,
}

impl DevNum {
    /// The number of a device node's `st_rdev`.
    pub fn of_rdev(rdev: u64) -> Self {
        DevNum {
            major: rustix::fs::major(rdev),
            minor: rustix::fs::minor(rdev),
        }
    }

    /// Parses `MAJOR:MINOR`.
    pub fn parse(text: &str) -> Option<Self> {
        let (major, minor) = text.trim().split_once(':')?;
        Some(DevNum {
            major: major.parse().ok()?,
            minor: minor.parse().ok()?,
        })
    }
}

impl fmt::Display for DevNum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.major, self.minor)
    }
}

/// One mounted filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub dev: DevNum,
    pub mount_point: String,
    pub source: String,
}

/// The mounts of a mountinfo text, in order; lines it cannot read are left out.
pub fn parse_mountinfo(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            let dash = fields.iter().position(|f| *f == "-")?;
            Some(Mount {
                dev: DevNum::parse(fields.get(2)?)?,
                mount_point: unescape(fields.get(4)?),
                source: unescape(fields.get(dash + 2)?),
            })
        })
        .collect()
}

/// Undoes the kernel's `\ooo` octal escapes (a space is `\040`).
fn unescape(field: &str) -> String {
    let mut out = Vec::with_capacity(field.len());
    let bytes = field.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let code = bytes
            .get(i + 1..i + 4)
            .and_then(|d| u8::from_str_radix(std::str::from_utf8(d).ok()?, 8).ok());
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

/// The kernel's view of block devices under a sysfs root (`/sys`).
#[derive(Debug, Clone)]
pub struct SysBlock {
    root: PathBuf,
}

impl SysBlock {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        SysBlock { root: root.into() }
    }

    /// The device's directory (`/sys/devices/.../sda/sda1`), if the kernel lists it.
    fn dir(&self, dev: DevNum) -> Option<PathBuf> {
        std::fs::canonicalize(self.root.join("dev/block").join(dev.to_string())).ok()
    }

    fn dev_in(dir: &Path) -> Option<DevNum> {
        DevNum::parse(&std::fs::read_to_string(dir.join("dev")).ok()?)
    }

    /// The devices named by the entries of `dir/sub` (`holders`, `slaves`).
    fn linked(&self, dev: DevNum, sub: &str) -> Vec<DevNum> {
        let Some(dir) = self.dir(dev) else {
            return Vec::new();
        };
        let Ok(entries) = std::fs::read_dir(dir.join(sub)) else {
            return Vec::new();
        };
        let mut devs: Vec<DevNum> = entries
            .filter_map(|e| Self::dev_in(&std::fs::canonicalize(e.ok()?.path()).ok()?))
            .collect();
        devs.sort();
        devs
    }

    /// The whole disk a partition belongs to (a disk is its own).
    pub fn whole_disk(&self, dev: DevNum) -> DevNum {
        self.dir(dev)
            .filter(|dir| dir.join("partition").exists())
            .and_then(|dir| Self::dev_in(dir.parent()?))
            .unwrap_or(dev)
    }

    /// The partitions of a whole disk.
    pub fn partitions(&self, dev: DevNum) -> Vec<DevNum> {
        let Some(dir) = self.dir(dev) else {
            return Vec::new();
        };
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return Vec::new();
        };
        let mut parts: Vec<DevNum> = entries
            .filter_map(|e| {
                let path = e.ok()?.path();
                path.join("partition").exists().then_some(())?;
                Self::dev_in(&path)
            })
            .collect();
        parts.sort();
        parts
    }

    /// Devices built on `dev`, directly or through others (LVM volumes, RAID arrays).
    pub fn holders(&self, dev: DevNum) -> Vec<DevNum> {
        let mut found = Vec::new();
        self.walk(dev, "holders", 0, &mut found);
        found
    }

    /// The whole disks `dev` is stored on: through device-mapper/RAID to the bottom,
    /// then from a partition to its disk.
    pub fn disks_under(&self, dev: DevNum) -> Vec<DevNum> {
        let mut below = Vec::new();
        self.walk(dev, "slaves", 0, &mut below);
        let mut disks: Vec<DevNum> = below
            .into_iter()
            .chain([dev])
            .map(|d| self.whole_disk(d))
            .collect();
        disks.sort();
        disks.dedup();
        disks
    }

    fn walk(&self, dev: DevNum, sub: &str, depth: usize, found: &mut Vec<DevNum>) {
        if depth >= MAX_DEPTH {
            return;
        }
        for next in self.linked(dev, sub) {
            if !found.contains(&next) {
                found.push(next);
                self.walk(next, sub, depth + 1, found);
            }
        }
    }

    /// The file behind a loop device, if it is one.
    pub fn loop_backing_file(&self, dev: DevNum) -> Option<PathBuf> {
        let text = std::fs::read_to_string(self.dir(dev)?.join("loop/backing_file")).ok()?;
        Some(PathBuf::from(text.trim_end_matches('\n')))
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn dev(major: u32, minor: u32) -> DevNum {
        DevNum { major, minor }
    }

    /// A fake /sys: sda with sda1 and sda2, sda2 under dm-0 (an LVM volume).
    pub(in crate::flash) fn fake_sys() -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        let node = |rel: &str, num: &str, partition: bool| {
            let dir = r.join("devices").join(rel);
            std::fs::create_dir_all(dir.join("holders")).unwrap();
            std::fs::create_dir_all(dir.join("slaves")).unwrap();
            std::fs::write(dir.join("dev"), format!("{num}\n")).unwrap();
            if partition {
                std::fs::write(dir.join("partition"), "1\n").unwrap();
            }
            std::fs::create_dir_all(r.join("dev/block")).unwrap();
            symlink(&dir, r.join("dev/block").join(num)).unwrap();
        };
        node("sda", "8:0", false);
        node("sda/sda1", "8:1", true);
        node("sda/sda2", "8:2", true);
        node("dm-0", "254:0", false);
        symlink(
            r.join("devices/dm-0"),
            r.join("devices/sda/sda2/holders/dm-0"),
        )
        .unwrap();
        symlink(
            r.join("devices/sda/sda2"),
            r.join("devices/dm-0/slaves/sda2"),
        )
        .unwrap();
        root
    }

    #[test]
    fn follows_partitions_disks_and_device_mapper_both_ways() {
        let root = fake_sys();
        let sys = SysBlock::new(root.path());
        assert_eq!(sys.whole_disk(dev(8, 1)), dev(8, 0));
        assert_eq!(sys.whole_disk(dev(8, 0)), dev(8, 0));
        assert_eq!(sys.partitions(dev(8, 0)), vec![dev(8, 1), dev(8, 2)]);
        assert_eq!(sys.holders(dev(8, 2)), vec![dev(254, 0)]);
        assert_eq!(sys.disks_under(dev(254, 0)), vec![dev(8, 0), dev(254, 0)]);
        // A device the kernel does not list is only itself.
        assert_eq!(sys.disks_under(dev(9, 9)), vec![dev(9, 9)]);
    }

    #[test]
    fn parses_mountinfo_with_optional_fields_and_escapes() {
        let text = "36 35 98:0 / /mnt/my\\040card rw master:1 - ext4 /dev/sdb1 rw\nnoise\n";
        assert_eq!(
            parse_mountinfo(text),
            vec![Mount {
                dev: dev(98, 0),
                mount_point: "/mnt/my card".into(),
                source: "/dev/sdb1".into(),
            }]
        );
    }
}
