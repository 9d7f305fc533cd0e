//! Reading the two copies of a GPT (primary and backup) from a [`Medium`], and writing
//! new entry arrays to both in a power-safe order.
//!
//! Load prefers the primary copy and falls back to the backup when the primary's header
//! or entry-array CRC is wrong. A commit first writes the copy load would *not* use (the
//! backup while the primary is valid, else the primary), flushes, then writes the other:
//! a power cut inside the first write leaves the trusted copy untouched (old state); a
//! cut inside the second leaves that copy invalid, so load falls back to the first,
//! already complete copy (new state). Within a copy the header and the entry array are
//! written together (one write when adjacent) with no flush between: a copy with half
//! its sectors fails its header or entry-array CRC, so it is never valid half-written.

use crate::medium::Medium;
use crate::store::StoreError;

use super::header::Header;

/// Logical sector sizes we look for, in order.
const SECTOR_SIZES: [u64; 2] = [512, 4096];
/// Offset of the attribute field inside a partition entry.
const ATTRIBUTES_AT: usize = 48;

/// One copy of the table: its header and its entry array (exactly `entries_bytes`).
#[derive(Debug, Clone)]
pub struct Copy {
    pub header: Header,
    pub entries: Vec<u8>,
}

/// Both copies as found on the disk.
#[derive(Debug)]
pub struct Table {
    pub sector_size: u64,
    /// Where the backup header is (or belongs): the primary's alternate LBA if the
    /// primary is valid and points inside the disk, else the disk's last LBA.
    pub backup_lba: u64,
    pub primary: Result<Copy, String>,
    pub backup: Result<Copy, String>,
}

fn corrupt(medium: &impl Medium, reason: String) -> StoreError {
    StoreError::Corrupt {
        path: medium.path().to_owned(),
        format: "GPT",
        reason,
    }
}

/// Reads a copy whose header sits at `lba`; `Err` says why it is not valid.
fn read_copy<M: Medium>(medium: &M, sector: u64, lba: u64, disk_len: u64) -> Result<Copy, String> {
    let sector_bytes = usize::try_from(sector).map_err(|_| "sector size".to_string())?;
    let start = lba
        .checked_mul(sector)
        .filter(|s| s.saturating_add(sector) <= disk_len)
        .ok_or_else(|| format!("LBA {lba} is past the end of the disk"))?;
    let raw = medium
        .read_at(start, sector_bytes)
        .map_err(|e| format!("reading LBA {lba}: {e}"))?;
    let header = Header::parse(&raw, lba)?;
    let len = header.entries_bytes();
    let at = header
        .entries_lba
        .checked_mul(sector)
        .filter(|at| at.saturating_add(len) <= disk_len)
        .ok_or_else(|| {
            format!(
                "entry array at LBA {} is past the end of the disk",
                header.entries_lba
            )
        })?;
    if header.entries_lba == lba || header.entries_lba == 0 {
        return Err(format!(
            "entry array at LBA {} overlaps a header",
            header.entries_lba
        ));
    }
    let entries = medium
        .read_at(at, len as usize)
        .map_err(|e| format!("reading the entry array: {e}"))?;
    let crc = crc32fast::hash(&entries);
    if crc != header.entries_crc {
        return Err(format!(
            "entry-array CRC mismatch for the header at LBA {lba} (stored {:#010x}, computed {crc:#010x})",
            header.entries_crc
        ));
    }
    Ok(Copy { header, entries })
}

impl Table {
    /// Reads both copies, trying 512- then 4096-byte sectors. Fails only if neither copy
    /// is valid at either sector size.
    pub fn read<M: Medium>(medium: &M) -> Result<Table, StoreError> {
        let disk_len = medium.len()?;
        let mut reasons = Vec::new();
        for sector in SECTOR_SIZES {
            let sectors = disk_len / sector;
            if sectors < 3 {
                reasons.push(format!("{sector}-byte sectors: disk too small"));
                continue;
            }
            let last_lba = sectors - 1;
            let primary = read_copy(medium, sector, 1, disk_len);
            let backup_lba = match &primary {
                Ok(p) if (2..=last_lba).contains(&p.header.alternate_lba) => p.header.alternate_lba,
                _ => last_lba,
            };
            let backup = read_copy(medium, sector, backup_lba, disk_len);
            if primary.is_ok() || backup.is_ok() {
                return Ok(Table {
                    sector_size: sector,
                    backup_lba,
                    primary,
                    backup,
                });
            }
            reasons.push(format!(
                "{sector}-byte sectors: primary: {}; backup: {}",
                primary.err().unwrap_or_default(),
                backup.err().unwrap_or_default()
            ));
        }
        Err(corrupt(
            medium,
            format!("no valid GPT copy ({})", reasons.join("; ")),
        ))
    }

    /// The copy load trusts: the primary if valid, else the backup.
    pub fn trusted(&self) -> Option<&Copy> {
        self.primary.as_ref().ok().or(self.backup.as_ref().ok())
    }

    /// Writes `entries` (a modified copy of the trusted entry array) to both copies in
    /// the power-safe order described in the module docs.
    pub fn write_entries<M: Medium>(
        &self,
        medium: &mut M,
        entries: &[u8],
    ) -> Result<(), StoreError> {
        let base = self
            .trusted()
            .ok_or_else(|| corrupt(medium, "no valid GPT copy to update".into()))?;
        let h = &base.header;
        let crc = crc32fast::hash(entries);
        let array_sectors = h.entries_sectors(self.sector_size);
        let backup_lba = self.backup_lba;
        if let (Ok(p), Ok(b)) = (&self.primary, &self.backup) {
            if (p.header.entry_count, p.header.entry_size)
                != (b.header.entry_count, b.header.entry_size)
            {
                return Err(corrupt(
                    medium,
                    "the primary and backup tables disagree on the entry array's size; \
                     repair the table (e.g. sgdisk -v, then sgdisk -e or cgpt repair)"
                        .into(),
                ));
            }
        }
        let primary_entries = match &self.primary {
            Ok(p) => p.header.entries_lba,
            Err(_) => 2,
        };
        let backup_entries = match &self.backup {
            Ok(b) => b.header.entries_lba,
            Err(_) => backup_lba.saturating_sub(array_sectors),
        };
        // Neither array may reach into a header or the partitions' space.
        let primary_fits =
            primary_entries >= 2 && primary_entries.saturating_add(array_sectors) <= h.first_usable;
        let backup_fits = backup_entries > h.last_usable
            && backup_entries.saturating_add(array_sectors) <= backup_lba;
        if !primary_fits || !backup_fits {
            return Err(corrupt(
                medium,
                format!(
                    "entry arrays at LBA {primary_entries} and {backup_entries} ({array_sectors} \
                     sectors) overlap a header or the usable range {}..={}",
                    h.first_usable, h.last_usable
                ),
            ));
        }
        let primary = h.relocated(1, backup_lba, primary_entries, crc);
        let backup = h.relocated(backup_lba, 1, backup_entries, crc);
        let order = if self.primary.is_ok() {
            [backup, primary]
        } else {
            [primary, backup]
        };
        for header in order {
            self.write_copy(medium, &header, entries)?;
        }
        Ok(())
    }

    /// Writes one copy, then flushes once. The header and the entry sectors that
    /// changed are one write when they are adjacent (the usual layout: the span from the
    /// header to the last changed sector, or from the first changed sector to the
    /// header); a cut inside it leaves the copy's CRCs failing, so no flush is needed
    /// between them. The flush after it is what orders this copy before the other one.
    fn write_copy<M: Medium>(
        &self,
        medium: &mut M,
        header: &Header,
        entries: &[u8],
    ) -> Result<(), StoreError> {
        let ss = self.sector_size;
        let sector = ss as usize;
        let at = header.entries_lba * ss;
        let region_len = header.entries_sectors(ss) * ss;
        let region_len = usize::try_from(region_len)
            .map_err(|_| corrupt(medium, "entry array too large".into()))?;
        let mut region = medium.read_at(at, region_len)?;
        let old = region.clone();
        region[..entries.len()].copy_from_slice(entries);
        let changed: Vec<usize> = (0..region_len / sector)
            .filter(|i| region[i * sector..(i + 1) * sector] != old[i * sector..(i + 1) * sector])
            .collect();
        let head = header.to_sector(sector);
        let array_sectors = header.entries_sectors(ss);
        match (changed.first(), changed.last()) {
            (_, Some(&last)) if header.entries_lba == header.my_lba + 1 => {
                let mut span = head;
                span.extend_from_slice(&region[..(last + 1) * sector]);
                medium.write_at(header.my_lba * ss, &span)?;
            }
            (Some(&first), _) if header.entries_lba + array_sectors == header.my_lba => {
                let mut span = region[first * sector..].to_vec();
                span.extend_from_slice(&head);
                medium.write_at(at + (first * sector) as u64, &span)?;
            }
            _ => {
                for i in changed {
                    medium.write_at(
                        at + (i * sector) as u64,
                        &region[i * sector..(i + 1) * sector],
                    )?;
                }
                medium.write_at(header.my_lba * ss, &head)?;
            }
        }
        Ok(medium.flush()?)
    }
}

/// The raw attribute field of entry `index` (0-based) in an entry array.
pub fn attributes(entries: &[u8], entry_size: u32, index: u32) -> Option<u64> {
    let at = (index as usize).checked_mul(entry_size as usize)? + ATTRIBUTES_AT;
    let bytes = entries.get(at..at + 8)?;
    let mut v = [0u8; 8];
    v.copy_from_slice(bytes);
    Some(u64::from_le_bytes(v))
}

/// Sets the raw attribute field of entry `index`; false if it is outside the array.
pub fn set_attributes(entries: &mut [u8], entry_size: u32, index: u32, raw: u64) -> bool {
    let Some(at) = (index as usize)
        .checked_mul(entry_size as usize)
        .map(|a| a + ATTRIBUTES_AT)
    else {
        return false;
    };
    match entries.get_mut(at..at + 8) {
        Some(slot) => {
            slot.copy_from_slice(&raw.to_le_bytes());
            true
        }
        None => false,
    }
}

/// Whether entry `index` is in use (its partition type GUID is not all zeros).
pub fn entry_in_use(entries: &[u8], entry_size: u32, index: u32) -> bool {
    let at = (index as usize).saturating_mul(entry_size as usize);
    entries
        .get(at..at.saturating_add(16))
        .is_some_and(|guid| guid.iter().any(|&b| b != 0))
}
