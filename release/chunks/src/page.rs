//! Grouping chunk entries into pages, content-defined like the chunks themselves.
//!
//! A page ends after an entry whose hash has its low 6 bits zero (64 entries on
//! average, between 16 and 256), so a local change in the image changes one or two
//! pages and every other page keeps its entries, and so its identity hash.

use std::ops::Range;

use sha2::{Digest, Sha256};

use crate::chunker::ChunkHash;

const MIN_ENTRIES: usize = 16;
const MAX_ENTRIES: usize = crate::limits::MAX_PAGE_ENTRIES as usize;
const MASK: u16 = 63;

/// Splits a sequence of chunk hashes into page ranges.
pub fn paginate(hashes: &[ChunkHash]) -> Vec<Range<usize>> {
    let mut pages = Vec::with_capacity(hashes.len() / 48 + 1);
    let mut start = 0;
    for (i, h) in hashes.iter().enumerate() {
        let count = i + 1 - start;
        let natural = u16::from_le_bytes([h[0], h[1]]) & MASK == 0;
        if (count >= MIN_ENTRIES && natural) || count == MAX_ENTRIES {
            pages.push(start..i + 1);
            start = i + 1;
        }
    }
    if start < hashes.len() {
        pages.push(start..hashes.len());
    }
    pages
}

/// The identity of a page: sha256 over each entry's hash and raw length. It leaves out
/// compressed lengths so a device can compute it from its seed alone.
pub fn page_ids_hash(entries: impl Iterator<Item = (ChunkHash, u32)>) -> [u8; 32] {
    let mut h = Sha256::new();
    for (hash, len) in entries {
        h.update(hash);
        h.update(len.to_le_bytes());
    }
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_cover_all_and_respect_bounds() {
        let hashes: Vec<ChunkHash> = (0..5000u32)
            .map(|i| crate::chunker::chunk_hash(&i.to_le_bytes()))
            .collect();
        let pages = paginate(&hashes);
        assert_eq!(pages.first().map(|r| r.start), Some(0));
        assert_eq!(pages.last().map(|r| r.end), Some(5000));
        for w in pages.windows(2) {
            assert_eq!(w[0].end, w[1].start);
        }
        for p in &pages[..pages.len() - 1] {
            assert!(p.len() >= MIN_ENTRIES && p.len() <= MAX_ENTRIES);
        }
        let mut edited = hashes.clone();
        edited[2500] = [9; 16];
        let other = paginate(&edited);
        let same = pages.iter().filter(|p| other.contains(p)).count();
        assert!(
            same + 3 >= pages.len(),
            "{same} of {} pages kept",
            pages.len()
        );
    }
}
