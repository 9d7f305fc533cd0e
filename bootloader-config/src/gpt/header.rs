//! The GPT header: its fields, its checks, and its serialization with a fresh CRC.
//!
//! The header CRC is CRC-32 over `header_size` bytes with the CRC field itself zeroed; the
//! entry-array CRC is CRC-32 over `entries × entry_size` bytes. Bytes of a header sector
//! past `header_size` are reserved and written as zeros.

/// `EFI PART`, the first eight bytes of every GPT header.
pub const SIGNATURE: &[u8; 8] = b"EFI PART";
/// The size of the fields the UEFI specification defines (revision 1.0).
pub const MIN_HEADER_SIZE: u32 = 92;
/// The smallest partition entry the specification allows.
pub const MIN_ENTRY_SIZE: u32 = 128;
/// An upper bound on the entry array we read: real tables hold 128 entries of 128 bytes
/// (16 KiB); a header that claims more than this is treated as corrupt rather than
/// allocating what hostile bytes ask for.
pub const MAX_ENTRY_ARRAY: u64 = 1 << 20;

const CRC_FIELD: std::ops::Range<usize> = 16..20;

/// A parsed GPT header (primary or backup).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The header exactly as read, `header_size` bytes long; fields we do not change
    /// (revision, disk GUID, usable range) are kept from here.
    raw: Vec<u8>,
    pub my_lba: u64,
    pub alternate_lba: u64,
    pub entries_lba: u64,
    /// The first and last LBA partitions may use; the entry arrays sit outside.
    pub first_usable: u64,
    pub last_usable: u64,
    pub entry_count: u32,
    pub entry_size: u32,
    pub entries_crc: u32,
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut v = [0u8; 4];
    v.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(v)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut v = [0u8; 8];
    v.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(v)
}

/// CRC-32 of a header with its CRC field zeroed.
fn header_crc(raw: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&raw[..CRC_FIELD.start]);
    h.update(&[0; 4]);
    h.update(&raw[CRC_FIELD.end..]);
    h.finalize()
}

impl Header {
    /// Parses and checks the header in `sector` (one logical sector read at `lba`).
    /// The entry array is checked separately, since it lives elsewhere on the disk.
    pub fn parse(sector: &[u8], lba: u64) -> Result<Header, String> {
        if sector.len() < MIN_HEADER_SIZE as usize || &sector[..8] != SIGNATURE {
            return Err(format!("no GPT signature at LBA {lba}"));
        }
        let size = u32_at(sector, 12);
        if size < MIN_HEADER_SIZE || size as usize > sector.len() {
            return Err(format!(
                "header at LBA {lba} claims size {size}, outside {MIN_HEADER_SIZE}..={}",
                sector.len()
            ));
        }
        let raw = sector[..size as usize].to_vec();
        let stored = u32_at(&raw, CRC_FIELD.start);
        let computed = header_crc(&raw);
        if stored != computed {
            return Err(format!(
                "header CRC mismatch at LBA {lba} (stored {stored:#010x}, computed {computed:#010x})"
            ));
        }
        let header = Header {
            my_lba: u64_at(&raw, 24),
            alternate_lba: u64_at(&raw, 32),
            entries_lba: u64_at(&raw, 72),
            first_usable: u64_at(&raw, 40),
            last_usable: u64_at(&raw, 48),
            entry_count: u32_at(&raw, 80),
            entry_size: u32_at(&raw, 84),
            entries_crc: u32_at(&raw, 88),
            raw,
        };
        if header.my_lba != lba {
            return Err(format!(
                "header at LBA {lba} says it lives at LBA {}",
                header.my_lba
            ));
        }
        if header.entry_size < MIN_ENTRY_SIZE || !header.entry_size.is_power_of_two() {
            return Err(format!(
                "header at LBA {lba} has entry size {}, not a power of two >= {MIN_ENTRY_SIZE}",
                header.entry_size
            ));
        }
        let array = header.entries_bytes();
        if array == 0 || array > MAX_ENTRY_ARRAY {
            return Err(format!(
                "header at LBA {lba} has an entry array of {array} bytes (allowed 1..={MAX_ENTRY_ARRAY})"
            ));
        }
        Ok(header)
    }

    /// Bytes of the entry array the entries CRC covers.
    pub fn entries_bytes(&self) -> u64 {
        u64::from(self.entry_count) * u64::from(self.entry_size)
    }

    /// Sectors the entry array occupies.
    pub fn entries_sectors(&self, sector_size: u64) -> u64 {
        self.entries_bytes().div_ceil(sector_size)
    }

    /// This header moved to `my_lba` with its entries at `entries_lba`, pointing at the
    /// other copy at `alternate_lba`, for an entry array with CRC `entries_crc`.
    pub fn relocated(
        &self,
        my_lba: u64,
        alternate_lba: u64,
        entries_lba: u64,
        entries_crc: u32,
    ) -> Header {
        let mut h = self.clone();
        h.my_lba = my_lba;
        h.alternate_lba = alternate_lba;
        h.entries_lba = entries_lba;
        h.entries_crc = entries_crc;
        h.raw[24..32].copy_from_slice(&my_lba.to_le_bytes());
        h.raw[32..40].copy_from_slice(&alternate_lba.to_le_bytes());
        h.raw[72..80].copy_from_slice(&entries_lba.to_le_bytes());
        h.raw[88..92].copy_from_slice(&entries_crc.to_le_bytes());
        let crc = header_crc(&h.raw);
        h.raw[CRC_FIELD].copy_from_slice(&crc.to_le_bytes());
        h
    }

    /// The whole header sector: the header with its CRC, then zeros.
    pub fn to_sector(&self, sector_size: usize) -> Vec<u8> {
        let mut sector = vec![0u8; sector_size];
        let n = self.raw.len().min(sector_size);
        sector[..n].copy_from_slice(&self.raw[..n]);
        sector
    }

    /// Builds a fresh revision-1.0 header (for new images; see [`super::image`]).
    #[allow(clippy::too_many_arguments)]
    pub fn fresh(
        my_lba: u64,
        alternate_lba: u64,
        first_usable: u64,
        last_usable: u64,
        disk_guid: [u8; 16],
        entries_lba: u64,
        entry_count: u32,
        entries_crc: u32,
    ) -> Header {
        let mut raw = vec![0u8; MIN_HEADER_SIZE as usize];
        raw[..8].copy_from_slice(SIGNATURE);
        raw[8..12].copy_from_slice(&0x0001_0000u32.to_le_bytes());
        raw[12..16].copy_from_slice(&MIN_HEADER_SIZE.to_le_bytes());
        raw[40..48].copy_from_slice(&first_usable.to_le_bytes());
        raw[48..56].copy_from_slice(&last_usable.to_le_bytes());
        raw[56..72].copy_from_slice(&disk_guid);
        raw[80..84].copy_from_slice(&entry_count.to_le_bytes());
        raw[84..88].copy_from_slice(&MIN_ENTRY_SIZE.to_le_bytes());
        let base = Header {
            raw,
            my_lba,
            alternate_lba,
            entries_lba,
            first_usable,
            last_usable,
            entry_count,
            entry_size: MIN_ENTRY_SIZE,
            entries_crc,
        };
        base.relocated(my_lba, alternate_lba, entries_lba, entries_crc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Header {
        Header::fresh(1, 99, 34, 66, [7; 16], 2, 128, 0x1234_5678)
    }

    #[test]
    fn round_trips_through_a_sector() {
        let h = sample();
        let parsed = Header::parse(&h.to_sector(512), 1).unwrap();
        assert_eq!(parsed, h);
    }

    #[test]
    fn any_flipped_byte_is_caught() {
        let sector = sample().to_sector(512);
        for i in 0..MIN_HEADER_SIZE as usize {
            let mut bad = sector.clone();
            bad[i] ^= 0x40;
            assert!(Header::parse(&bad, 1).is_err(), "flip at byte {i} accepted");
        }
    }

    #[test]
    fn wrong_location_and_sizes_are_refused() {
        let h = sample();
        assert!(Header::parse(&h.to_sector(512), 2)
            .unwrap_err()
            .contains("lives at LBA 1"));
        let huge = Header::fresh(1, 99, 34, 66, [7; 16], 2, u32::MAX, 0);
        assert!(Header::parse(&huge.to_sector(512), 1)
            .unwrap_err()
            .contains("entry array"));
    }
}
