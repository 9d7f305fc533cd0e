//! Growing the last GPT partition (the state partition) to the end of the disk on first
//! boot: the image is smaller than the disk it is flashed to, so its backup header sits
//! in the middle of the disk and `/var` would get only the image's share.
//!
//! Both headers and both entry arrays are rewritten with fresh CRCs: the backup first,
//! at the new end (a cut before the primary is written leaves the old primary, whose
//! backup pointer still names the old backup, which we do not touch until after),
//! then the primary, then the old backup header is wiped. The protective MBR's size is
//! updated too. Only the last partition (the highest ending LBA) grows, and only when it
//! is the one the caller names.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// Entries in an array we accept (the spec's minimum is 128; sgdisk writes 128).
const MAX_ENTRIES: u32 = 1024;

/// Why a disk's GPT could not be grown.
#[derive(Debug, thiserror::Error)]
pub enum GptError {
    /// Reading or writing the disk failed.
    #[error("{what} on {disk}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The disk.
        disk: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The primary header or its entries are not a valid GPT.
    #[error("{disk} has no valid GPT: {problem}")]
    Invalid {
        /// The disk.
        disk: String,
        /// What is wrong.
        problem: String,
    },
    /// The partition asked to grow is not the last one.
    #[error("partition {number} of {disk} is not the last one on the disk (partition {last} is), so it cannot grow to the end")]
    NotLast {
        /// The disk.
        disk: String,
        /// The partition asked for.
        number: u32,
        /// The last partition.
        last: u32,
    },
}

/// What [`grow_last`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grown {
    /// The partition already ended at the end of the disk.
    AlreadyFull,
    /// Grown: its new first and last LBA.
    To {
        /// First LBA (unchanged).
        first: u64,
        /// New last LBA.
        last: u64,
    },
}

fn le64(b: &[u8], at: usize) -> u64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(x)
}

fn le32(b: &[u8], at: usize) -> u32 {
    let mut x = [0u8; 4];
    x.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(x)
}

/// A header's CRC over its `size` bytes with the CRC field zeroed.
fn header_crc(header: &[u8], size: usize) -> u32 {
    let mut copy = header[..size].to_vec();
    copy[16..20].fill(0);
    crc32fast::hash(&copy)
}

/// Grows partition `number` (1-based), which must be the last, to the end of `disk`
/// (a block device or an image file of `disk_bytes`), sectors of `sector` bytes.
pub fn grow_last(
    disk: &File,
    name: &Path,
    disk_bytes: u64,
    sector: u64,
    number: u32,
) -> Result<Grown, GptError> {
    let label = name.display().to_string();
    let invalid = |problem: String| GptError::Invalid {
        disk: label.clone(),
        problem,
    };
    let io = |what: &'static str| {
        let label = label.clone();
        move |source| GptError::Io {
            what,
            disk: label,
            source,
        }
    };
    if !(512..=4096).contains(&sector) || !sector.is_power_of_two() {
        return Err(invalid(format!("a sector size of {sector} bytes")));
    }
    let sectors = disk_bytes / sector;
    let ss = sector as usize;
    let mut header = vec![0u8; ss];
    disk.read_exact_at(&mut header, sector)
        .map_err(io("reading the primary GPT header"))?;
    if &header[0..8] != b"EFI PART" {
        return Err(invalid("no \"EFI PART\" signature in LBA 1".into()));
    }
    let size = le32(&header, 12) as usize;
    if !(92..=ss).contains(&size) {
        return Err(invalid(format!("a header size of {size} bytes")));
    }
    if header_crc(&header, size) != le32(&header, 16) {
        return Err(invalid("the primary header's CRC does not match".into()));
    }
    let entries_lba = le64(&header, 72);
    let count = le32(&header, 80);
    let entry_size = le32(&header, 84);
    if count == 0
        || count > MAX_ENTRIES
        || !(128..=4096).contains(&entry_size)
        || entry_size % 128 != 0
    {
        return Err(invalid(format!("{count} entries of {entry_size} bytes")));
    }
    let array_bytes = u64::from(count) * u64::from(entry_size);
    let array_sectors = array_bytes.div_ceil(sector);
    if entries_lba < 2 || entries_lba + array_sectors >= sectors {
        return Err(invalid(format!("an entry array at LBA {entries_lba}")));
    }
    let mut entries = vec![0u8; (array_sectors * sector) as usize];
    disk.read_exact_at(&mut entries, entries_lba * sector)
        .map_err(io("reading the GPT entries"))?;
    if crc32fast::hash(&entries[..array_bytes as usize]) != le32(&header, 88) {
        return Err(invalid("the entry array's CRC does not match".into()));
    }
    // The last partition: the used entry with the highest ending LBA.
    let es = entry_size as usize;
    let last = (0..count as usize)
        .filter(|i| entries[i * es..i * es + 16].iter().any(|b| *b != 0))
        .max_by_key(|i| le64(&entries, i * es + 40))
        .ok_or_else(|| invalid("no partitions".into()))?;
    let last_number = last as u32 + 1;
    if last_number != number {
        return Err(GptError::NotLast {
            disk: label.clone(),
            number,
            last: last_number,
        });
    }
    let new_backup = sectors - 1;
    let new_backup_entries = new_backup - array_sectors;
    let new_last_usable = new_backup_entries - 1;
    let old_backup = le64(&header, 32);
    let first = le64(&entries, last * es + 32);
    let end = le64(&entries, last * es + 40);
    if end >= new_last_usable && old_backup == new_backup {
        return Ok(Grown::AlreadyFull);
    }
    if new_last_usable <= first || end > new_last_usable {
        return Err(invalid(format!(
            "partition {number} ends past the disk's end"
        )));
    }
    entries[last * es + 40..last * es + 48].copy_from_slice(&new_last_usable.to_le_bytes());
    let entries_crc = crc32fast::hash(&entries[..array_bytes as usize]);

    let mut primary = header.clone();
    primary[32..40].copy_from_slice(&new_backup.to_le_bytes());
    primary[48..56].copy_from_slice(&new_last_usable.to_le_bytes());
    primary[88..92].copy_from_slice(&entries_crc.to_le_bytes());
    let crc = header_crc(&primary, size);
    primary[16..20].copy_from_slice(&crc.to_le_bytes());

    let mut backup = primary.clone();
    backup[24..32].copy_from_slice(&new_backup.to_le_bytes());
    backup[32..40].copy_from_slice(&1u64.to_le_bytes());
    backup[72..80].copy_from_slice(&new_backup_entries.to_le_bytes());
    let crc = header_crc(&backup, size);
    backup[16..20].copy_from_slice(&crc.to_le_bytes());

    disk.write_all_at(&entries, new_backup_entries * sector)
        .map_err(io("writing the backup GPT entries"))?;
    disk.write_all_at(&backup, new_backup * sector)
        .map_err(io("writing the backup GPT header"))?;
    disk.sync_data().map_err(io("flushing the backup GPT"))?;
    disk.write_all_at(&entries, entries_lba * sector)
        .map_err(io("writing the primary GPT entries"))?;
    disk.write_all_at(&primary, sector)
        .map_err(io("writing the primary GPT header"))?;
    protective_mbr(disk, sectors).map_err(io("updating the protective MBR"))?;
    disk.sync_data().map_err(io("flushing the primary GPT"))?;
    // The old backup header now lies inside the grown partition; wipe it so nothing
    // mistakes it for a table.
    if old_backup != new_backup && old_backup < new_backup_entries && old_backup > 1 {
        let mut old = vec![0u8; ss];
        if disk.read_exact_at(&mut old, old_backup * sector).is_ok() && &old[0..8] == b"EFI PART" {
            disk.write_all_at(&vec![0u8; ss], old_backup * sector)
                .map_err(io("wiping the old backup GPT header"))?;
            disk.sync_data().map_err(io("flushing the wiped header"))?;
        }
    }
    Ok(Grown::To {
        first,
        last: new_last_usable,
    })
}

/// Sets the protective MBR's 0xEE partition to cover the disk (capped at 2^32 - 1).
fn protective_mbr(disk: &File, sectors: u64) -> std::io::Result<()> {
    let mut mbr = [0u8; 512];
    disk.read_exact_at(&mut mbr, 0)?;
    if mbr[510..512] != [0x55, 0xAA] {
        return Ok(());
    }
    for i in 0..4 {
        let at = 446 + i * 16;
        if mbr[at + 4] == 0xEE {
            let size = u32::try_from(sectors - 1).unwrap_or(u32::MAX);
            mbr[at + 12..at + 16].copy_from_slice(&size.to_le_bytes());
            disk.write_all_at(&mbr, 0)?;
            return Ok(());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    const MIB: u64 = 1024 * 1024;

    fn sgdisk(args: &[&str]) -> String {
        let out = Command::new("sgdisk")
            .args(args)
            .output()
            .expect("sgdisk is missing: apt-get install gdisk (scripts/deps/pid1.apt)");
        assert!(
            out.status.success(),
            "sgdisk {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A 64 MiB image with the qemu board's shape, then the file extended to `grown`.
    fn image(grown: u64) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("disk.img");
        File::create(&path).unwrap().set_len(64 * MIB).unwrap();
        let p = path.to_str().unwrap();
        sgdisk(&[
            "-o", "-n", "1:1M:+8M", "-c", "1:esp", "-n", "2:0:+16M", "-c", "2:root-a", "-n",
            "3:0:+16M", "-c", "3:root-b", "-n", "4:0:+8M", "-c", "4:var", p,
        ]);
        File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(grown)
            .unwrap();
        (dir, path)
    }

    fn grow(path: &Path, number: u32) -> Result<Grown, GptError> {
        let file = File::options().read(true).write(true).open(path).unwrap();
        let len = file.metadata().unwrap().len();
        grow_last(&file, path, len, 512, number)
    }

    #[test]
    fn the_last_partition_grows_to_the_end_and_sgdisk_agrees() {
        let (_dir, path) = image(200 * MIB);
        let p = path.to_str().unwrap();
        let grown = grow(&path, 4).unwrap();
        let sectors = 200 * MIB / 512;
        // 128 entries of 128 bytes: 32 sectors of backup entries, then the header.
        assert_eq!(
            grown,
            Grown::To {
                first: 83968,
                last: sectors - 34
            }
        );
        let verify = sgdisk(&["-v", p]);
        assert!(verify.contains("No problems found"), "{verify}");
        let print = sgdisk(&["-p", p]);
        let var = print
            .lines()
            .find(|l| l.trim_end().ends_with("var"))
            .unwrap();
        let fields: Vec<&str> = var.split_whitespace().collect();
        assert_eq!(fields[1], "83968", "{print}");
        assert_eq!(fields[2], (sectors - 34).to_string(), "{print}");
        // The others did not move; a second run has nothing to do.
        assert!(print.contains("root-b"), "{print}");
        assert_eq!(grow(&path, 4).unwrap(), Grown::AlreadyFull);
        assert!(sgdisk(&["-v", p]).contains("No problems found"));
    }

    #[test]
    fn only_the_last_partition_and_only_a_valid_table() {
        let (_dir, path) = image(100 * MIB);
        assert!(matches!(
            grow(&path, 3),
            Err(GptError::NotLast { last: 4, .. })
        ));
        // A flipped byte in the entries: refused, nothing written.
        let file = File::options().read(true).write(true).open(&path).unwrap();
        file.write_all_at(&[0x42], 2 * 512 + 128 * 3 + 60).unwrap();
        let error = grow(&path, 4).unwrap_err();
        assert!(error.to_string().contains("entry array's CRC"), "{error}");
        let blank = tempfile::NamedTempFile::new().unwrap();
        blank.as_file().set_len(MIB).unwrap();
        let error = grow(blank.path(), 1).unwrap_err();
        assert!(error.to_string().contains("EFI PART"), "{error}");
    }
}
