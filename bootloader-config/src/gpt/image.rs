//! Building a small, fresh GPT disk image in memory: a protective MBR, both table copies
//! with 128 entries, and a few partitions with zeroed attributes.
//!
//! Tests, fixtures and fuzz seeds use it; a real disk is partitioned by the image builder
//! or `sgdisk`, and [`super::GptStore`] then only rewrites attribute bits.

use super::header::{Header, MIN_ENTRY_SIZE};

/// The ChromeOS kernel partition type, `FE3A2A5D-4F32-41A7-B725-ACCC3285A309`, in its
/// on-disk byte order (the first three fields little-endian). `cgpt show` prints
/// attributes only for partitions of this type.
pub const CHROMEOS_KERNEL: [u8; 16] = [
    0x5D, 0x2A, 0x3A, 0xFE, 0x32, 0x4F, 0xA7, 0x41, 0xB7, 0x25, 0xAC, 0xCC, 0x32, 0x85, 0xA3, 0x09,
];

/// The entry count every real table has (16 KiB of entries).
pub const STANDARD_ENTRIES: u32 = 128;

/// A disk of `total_sectors` sectors of `sector_size` bytes, with `partitions`
/// partitions of the ChromeOS kernel type, each `partition_sectors` long, numbered from 1,
/// in a table of [`STANDARD_ENTRIES`] entries. Returns `None` if they do not fit.
pub fn chromeos_disk(
    sector_size: usize,
    total_sectors: u64,
    partitions: u32,
    partition_sectors: u64,
) -> Option<Vec<u8>> {
    chromeos_disk_with_entries(
        sector_size,
        total_sectors,
        partitions,
        partition_sectors,
        STANDARD_ENTRIES,
    )
}

/// Like [`chromeos_disk`] with a table of `entry_count` entries. Tiny tables keep
/// byte-by-byte torn-write tests fast, but only our store and `sgdisk` (with a warning)
/// read them: the specification asks for 16 KiB of entries and `cgpt` refuses less.
pub fn chromeos_disk_with_entries(
    sector_size: usize,
    total_sectors: u64,
    partitions: u32,
    partition_sectors: u64,
    entry_count: u32,
) -> Option<Vec<u8>> {
    if partitions > entry_count {
        return None;
    }
    let ss = sector_size as u64;
    let array_bytes = u64::from(entry_count) * u64::from(MIN_ENTRY_SIZE);
    let array_sectors = array_bytes.div_ceil(ss);
    let last_lba = total_sectors.checked_sub(1)?;
    let first_usable = 2 + array_sectors;
    let last_usable = last_lba.checked_sub(array_sectors + 1)?;
    let needed = u64::from(partitions) * partition_sectors;
    if first_usable + needed > last_usable + 1 {
        return None;
    }
    let mut disk = vec![0u8; usize::try_from(total_sectors * ss).ok()?];
    protective_mbr(&mut disk, total_sectors);

    let mut entries = vec![0u8; array_bytes as usize];
    for i in 0..partitions {
        let e = &mut entries[(i * MIN_ENTRY_SIZE) as usize..][..MIN_ENTRY_SIZE as usize];
        e[..16].copy_from_slice(&CHROMEOS_KERNEL);
        // A unique GUID per partition; version-4 style bits so tools accept it.
        let mut unique = [0x5Au8; 16];
        unique[0] = i as u8 + 1;
        unique[7] = 0x40;
        unique[8] = 0x80;
        e[16..32].copy_from_slice(&unique);
        let first = first_usable + u64::from(i) * partition_sectors;
        e[32..40].copy_from_slice(&first.to_le_bytes());
        e[40..48].copy_from_slice(&(first + partition_sectors - 1).to_le_bytes());
        let name = format!("KERN-{}", char::from(b'A' + (i % 26) as u8));
        for (j, unit) in name.encode_utf16().enumerate() {
            e[56 + 2 * j..58 + 2 * j].copy_from_slice(&unit.to_le_bytes());
        }
    }
    let crc = crc32fast::hash(&entries);
    let guid = [0x33; 16];
    let backup_entries = last_lba - array_sectors;
    let primary = Header::fresh(
        1,
        last_lba,
        first_usable,
        last_usable,
        guid,
        2,
        entry_count,
        crc,
    );
    let backup = primary.relocated(last_lba, 1, backup_entries, crc);
    for (header, entries_lba) in [(primary, 2), (backup, backup_entries)] {
        let at = (header.my_lba * ss) as usize;
        disk[at..at + sector_size].copy_from_slice(&header.to_sector(sector_size));
        let at = (entries_lba * ss) as usize;
        disk[at..at + entries.len()].copy_from_slice(&entries);
    }
    Some(disk)
}

fn protective_mbr(disk: &mut [u8], total_sectors: u64) {
    let record = &mut disk[446..462];
    record[1..4].copy_from_slice(&[0x00, 0x02, 0x00]);
    record[4] = 0xEE;
    record[5..8].copy_from_slice(&[0xFF, 0xFF, 0xFF]);
    record[8..12].copy_from_slice(&1u32.to_le_bytes());
    let size = u32::try_from(total_sectors - 1).unwrap_or(u32::MAX);
    record[12..16].copy_from_slice(&size.to_le_bytes());
    disk[510] = 0x55;
    disk[511] = 0xAA;
}
