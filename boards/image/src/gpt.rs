//! The GPT: fixed GUIDs derived from names, the table written by `sgdisk`, and our own
//! reader of what is on a disk (names, extents, GUIDs), so a test checks the layout
//! without trusting the tool that wrote it.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use sha2::{Digest, Sha256};
use skerry_boards::{layout, BoardDefinition, PartitionType};

use crate::error::ImageError;
use crate::tools::{run, SGDISK};

const SECTOR: u64 = 512;
/// The most partition entries read back.
const MAX_ENTRIES: u32 = 128;

/// A name-based UUID (RFC 9562 version 8, from SHA-256 of `name`): the same name gives
/// the same GUID on every build.
pub fn name_uuid(name: &str) -> String {
    let hash = Sha256::digest(format!("skerry-image:{name}").as_bytes());
    let mut b: [u8; 16] = hash[..16].try_into().unwrap_or([0; 16]);
    b[6] = (b[6] & 0x0f) | 0x80;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// The disk GUID of `board`'s disk.
pub fn disk_guid(board: &str) -> String {
    name_uuid(&format!("disk:{board}"))
}

/// The unique GUID of partition `partition` on `board`'s disk.
pub fn partition_guid(board: &str, partition: &str) -> String {
    name_uuid(&format!("partition:{board}:{partition}"))
}

/// The GPT type GUID of a partition type.
pub fn type_guid(kind: PartitionType) -> &'static str {
    match kind {
        PartitionType::Esp => "C12A7328-F81F-11D2-BA4B-00A0C93EC93B",
        PartitionType::BasicData => "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7",
        PartitionType::Linux => "0FC63DAF-8483-4772-8E79-3D69D8477DE4",
    }
}

/// The type code `sgdisk` knows a partition type by.
pub fn sgdisk_code(kind: PartitionType) -> &'static str {
    match kind {
        PartitionType::Esp => "EF00",
        PartitionType::BasicData => "0700",
        PartitionType::Linux => "8300",
    }
}

/// Writes the board's partition table onto `disk` (already its full size).
pub fn write_table(board: &BoardDefinition, disk: &Path) -> Result<(), ImageError> {
    let mut cmd = SGDISK.command()?;
    cmd.arg("-U").arg(disk_guid(&board.name));
    for placed in layout::place(&board.disk) {
        let n = placed.number;
        let p = placed.partition;
        cmd.arg("-n").arg(format!(
            "{n}:{}:{}",
            placed.start / SECTOR,
            placed.end / SECTOR - 1
        ));
        cmd.arg("-t").arg(format!("{n}:{}", sgdisk_code(p.kind)));
        cmd.arg("-c").arg(format!("{n}:{}", p.name));
        cmd.arg("-u")
            .arg(format!("{n}:{}", partition_guid(&board.name, &p.name)));
    }
    cmd.arg(disk);
    run(&mut cmd).map(|_| ())
}

/// One partition as the table on a disk holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub number: u32,
    pub name: String,
    pub type_guid: String,
    pub unique_guid: String,
    /// First byte.
    pub start: u64,
    /// Last byte + 1.
    pub end: u64,
}

/// The disk GUID and the used entries of the primary GPT on `disk`.
pub fn read_table(disk: &Path) -> Result<(String, Vec<Entry>), ImageError> {
    let io = ImageError::io("reading the GPT of", disk);
    let mut f = std::fs::File::open(disk).map_err(ImageError::io("reading the GPT of", disk))?;
    let mut header = [0u8; 92];
    f.seek(SeekFrom::Start(SECTOR))
        .and_then(|_| f.read_exact(&mut header))
        .map_err(io)?;
    let bad = |reason: &str| ImageError::Input {
        what: format!("the GPT of {}", disk.display()),
        reason: reason.into(),
    };
    if &header[..8] != b"EFI PART" {
        return Err(bad("no GPT header at LBA 1"));
    }
    let u32_at = |o: usize| u32::from_le_bytes(header[o..o + 4].try_into().unwrap_or([0; 4]));
    let u64_at = |o: usize| u64::from_le_bytes(header[o..o + 8].try_into().unwrap_or([0; 8]));
    let disk_guid = guid(&header[56..72]);
    let (entries_lba, count, size) = (u64_at(72), u32_at(80), u32_at(84));
    if count > MAX_ENTRIES || !(128..=4096).contains(&size) {
        return Err(bad("entry count or size out of range"));
    }
    let mut raw = vec![0u8; count as usize * size as usize];
    f.seek(SeekFrom::Start(entries_lba.saturating_mul(SECTOR)))
        .and_then(|_| f.read_exact(&mut raw))
        .map_err(ImageError::io("reading the GPT entries of", disk))?;
    let mut entries = Vec::new();
    for (i, e) in raw.chunks(size as usize).enumerate() {
        if e[..16].iter().all(|&b| b == 0) {
            continue;
        }
        let lba = |o: usize| u64::from_le_bytes(e[o..o + 8].try_into().unwrap_or([0; 8]));
        let name: Vec<u16> = e[56..128]
            .chunks(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .take_while(|&c| c != 0)
            .collect();
        entries.push(Entry {
            number: i as u32 + 1,
            name: String::from_utf16_lossy(&name),
            type_guid: guid(&e[..16]),
            unique_guid: guid(&e[16..32]),
            start: lba(32) * SECTOR,
            end: (lba(40) + 1) * SECTOR,
        });
    }
    Ok((disk_guid, entries))
}

/// A GUID's mixed-endian bytes as text (upper case, as UEFI prints them).
fn guid(b: &[u8]) -> String {
    format!(
        "{:02X}{:02X}{:02X}{:02X}-{:02X}{:02X}-{:02X}{:02X}-{}-{}",
        b[3],
        b[2],
        b[1],
        b[0],
        b[5],
        b[4],
        b[7],
        b[6],
        hex::encode_upper(&b[8..10]),
        hex::encode_upper(&b[10..16])
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guids_are_fixed_per_name_and_differ_between_names() {
        assert_eq!(
            partition_guid("qemu-x86_64", "esp"),
            partition_guid("qemu-x86_64", "esp")
        );
        assert_ne!(
            partition_guid("qemu-x86_64", "esp"),
            partition_guid("qemu-x86_64", "root-a")
        );
        assert_ne!(disk_guid("qemu-x86_64"), disk_guid("rpi4"));
        let g = disk_guid("qemu-x86_64");
        assert_eq!(g.len(), 36);
        assert_eq!(&g[14..15], "8", "version 8: {g}");
    }
}
