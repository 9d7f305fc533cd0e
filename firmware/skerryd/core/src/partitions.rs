//! Block devices by their GPT name (PARTLABEL), read from `/sys/class/block/*/uevent`
//! as the kernel announces them: a device has no udev, so no `/dev/disk/by-partlabel`.
//! PID 1 finds its slot this way, and the daemon resolves the board definition's
//! `{dev:NAME}` and `{disk}` placeholders with it.

use std::path::{Path, PathBuf};

/// The most block devices looked at (a bound on what the kernel lists).
pub const MAX_BLOCK_DEVICES: usize = 4096;
/// The most bytes of one `uevent` file read.
const MAX_UEVENT: u64 = 4096;

/// One partition the kernel knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockPartition {
    /// Its device node, `/dev/vda2`.
    pub device: PathBuf,
    /// The whole disk's device node, `/dev/vda`.
    pub disk: PathBuf,
    /// Its number on the disk (`PARTN`).
    pub number: u32,
    /// Its GPT name (`PARTNAME`).
    pub label: String,
}

/// The keys of one `uevent` file that matter here.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Uevent {
    /// `DEVNAME=vda2`.
    pub devname: Option<String>,
    /// `DEVTYPE=partition` or `disk`.
    pub devtype: Option<String>,
    /// `PARTN=2`.
    pub partn: Option<u32>,
    /// `PARTNAME=root-a`.
    pub partname: Option<String>,
}

/// Parses the `KEY=value` lines of a `uevent` file; unknown keys are skipped.
pub fn parse_uevent(text: &str) -> Uevent {
    let mut event = Uevent::default();
    for line in text.lines() {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        match key {
            "DEVNAME" => event.devname = Some(value.to_owned()),
            "DEVTYPE" => event.devtype = Some(value.to_owned()),
            "PARTN" => event.partn = value.parse().ok(),
            "PARTNAME" => event.partname = Some(value.to_owned()),
            _ => {}
        }
    }
    event
}

/// Reads a sysfs attribute: its size says 4096 whatever it holds, so it is read to its
/// end (bounded), not by its length.
pub fn read_attribute(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read as _;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(MAX_UEVENT)
        .read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Every partition under `class_block` (`/sys/class/block`), device nodes under `dev`
/// (`/dev`). A directory that cannot be read is skipped: devices come and go.
pub fn scan(class_block: &Path, dev: &Path) -> std::io::Result<Vec<BlockPartition>> {
    let mut found = Vec::new();
    for (seen, entry) in std::fs::read_dir(class_block)?.enumerate() {
        if seen >= MAX_BLOCK_DEVICES {
            break;
        }
        let Ok(entry) = entry else { continue };
        let Ok(bytes) = read_attribute(&entry.path().join("uevent")) else {
            continue;
        };
        let event = parse_uevent(&String::from_utf8_lossy(&bytes));
        if event.devtype.as_deref() != Some("partition") {
            continue;
        }
        let (Some(devname), Some(number), Some(label)) =
            (event.devname, event.partn, event.partname)
        else {
            continue;
        };
        // /sys/class/block/vda2 links to .../block/vda/vda2: the parent is the disk.
        let disk = std::fs::canonicalize(entry.path())
            .ok()
            .and_then(|p| p.parent().and_then(Path::file_name).map(ToOwned::to_owned));
        let Some(disk) = disk else { continue };
        found.push(BlockPartition {
            device: dev.join(devname),
            disk: dev.join(disk),
            number,
            label,
        });
    }
    found.sort_by(|a, b| a.device.cmp(&b.device));
    Ok(found)
}

/// The partition labelled `label` under `class_block`, if the kernel lists one.
pub fn find(
    class_block: &Path,
    dev: &Path,
    label: &str,
) -> std::io::Result<Option<BlockPartition>> {
    Ok(scan(class_block, dev)?
        .into_iter()
        .find(|p| p.label == label))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uevent_keys() {
        let event = parse_uevent("MAJOR=254\nMINOR=2\nDEVNAME=vda2\nDEVTYPE=partition\nDISKSEQ=9\nPARTN=2\nPARTNAME=root-a\n");
        assert_eq!(event.devname.as_deref(), Some("vda2"));
        assert_eq!(event.devtype.as_deref(), Some("partition"));
        assert_eq!(event.partn, Some(2));
        assert_eq!(event.partname.as_deref(), Some("root-a"));
        assert_eq!(parse_uevent("garbage\nPARTN=x"), Uevent::default());
    }

    #[test]
    fn scan_finds_partitions_by_label_and_their_disk() {
        let sys = tempfile::tempdir().unwrap();
        let devices = sys.path().join("devices/pci/block");
        let class = sys.path().join("class/block");
        std::fs::create_dir_all(&class).unwrap();
        let add = |rel: &str, uevent: &str| {
            let dir = devices.join(rel);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("uevent"), uevent).unwrap();
            let name = Path::new(rel).file_name().unwrap();
            std::os::unix::fs::symlink(&dir, class.join(name)).unwrap();
        };
        add("vda", "DEVNAME=vda\nDEVTYPE=disk\n");
        add(
            "vda/vda1",
            "DEVNAME=vda1\nDEVTYPE=partition\nPARTN=1\nPARTNAME=esp\n",
        );
        add(
            "vda/vda2",
            "DEVNAME=vda2\nDEVTYPE=partition\nPARTN=2\nPARTNAME=root-a\n",
        );
        let found = find(&class, Path::new("/dev"), "root-a").unwrap().unwrap();
        assert_eq!(
            found,
            BlockPartition {
                device: "/dev/vda2".into(),
                disk: "/dev/vda".into(),
                number: 2,
                label: "root-a".into()
            }
        );
        assert_eq!(find(&class, Path::new("/dev"), "root-b").unwrap(), None);
        assert_eq!(scan(&class, Path::new("/dev")).unwrap().len(), 2);
    }
}
