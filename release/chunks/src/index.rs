//! The chunk index of one image.
//!
//! ```text
//! head  = header (80 bytes) ‖ page table (96 bytes per page)
//! header: "SKRYIDX1" ‖ image_len u64 ‖ image_sha256 [32] ‖ min,avg,max u32 ‖
//!         page_count u32 ‖ chunk_count u64 ‖ pack_len u64
//! page:   ids_hash [32] ‖ body_hash [32] ‖ body_offset u64 ‖ body_len u32 ‖
//!         entries u32 ‖ image_offset u64 ‖ pack_offset u64
//! body  = entries × (hash [16] ‖ len u32 ‖ comp_len u32)
//! ```
//! All integers little-endian. The head's sha256 and length are in the signed targets
//! metadata; each body is checked against `body_hash` in the head. `comp_len == 0`
//! marks a chunk that repeats an earlier chunk of the same image (the pack holds it
//! once). A page's chunks sit in the pack from `pack_offset`, in order.

use sha2::{Digest, Sha256};

use crate::chunker::{ChunkHash, ChunkParams};
use crate::error::IndexError;
use crate::limits::{MAX_CHUNKS, MAX_CHUNK_LEN, MAX_HEAD_LEN, MAX_PAGE_ENTRIES};
use crate::page::page_ids_hash;

const MAGIC: &[u8; 8] = b"SKRYIDX1";
/// Bytes of the fixed header.
pub const HEADER_LEN: usize = 80;
/// Bytes of one page-table entry.
pub const PAGE_REF_LEN: usize = 96;
/// Bytes of one chunk entry in a page body.
pub const ENTRY_LEN: usize = 24;

/// One chunk of the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkEntry {
    pub hash: ChunkHash,
    pub len: u32,
    /// Compressed bytes in the pack; 0 for a repeat of an earlier chunk.
    pub comp_len: u32,
}

/// One page in the head's table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRef {
    pub ids_hash: [u8; 32],
    pub body_hash: [u8; 32],
    pub body_offset: u64,
    pub body_len: u32,
    pub entries: u32,
    pub image_offset: u64,
    pub pack_offset: u64,
}

/// The head: what the device fetches first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexHead {
    pub image_len: u64,
    pub image_sha256: [u8; 32],
    pub params: ChunkParams,
    pub chunk_count: u64,
    pub pack_len: u64,
    pub pages: Vec<PageRef>,
}

impl IndexHead {
    /// Bytes of the encoded head.
    pub fn encoded_len(&self) -> usize {
        HEADER_LEN + PAGE_REF_LEN * self.pages.len()
    }

    /// Builds the head and the bodies for `entries` cut into `pages`.
    pub fn build(
        image_len: u64,
        image_sha256: [u8; 32],
        params: ChunkParams,
        entries: &[ChunkEntry],
        pages: &[std::ops::Range<usize>],
    ) -> (IndexHead, Vec<u8>) {
        let head_len = (HEADER_LEN + PAGE_REF_LEN * pages.len()) as u64;
        let mut bodies = Vec::with_capacity(entries.len() * ENTRY_LEN);
        let mut refs = Vec::with_capacity(pages.len());
        let (mut image_offset, mut pack_offset) = (0u64, 0u64);
        for range in pages {
            let page = &entries[range.clone()];
            let body_offset = head_len + bodies.len() as u64;
            let start = bodies.len();
            for e in page {
                bodies.extend_from_slice(&e.hash);
                bodies.extend_from_slice(&e.len.to_le_bytes());
                bodies.extend_from_slice(&e.comp_len.to_le_bytes());
            }
            let body = &bodies[start..];
            refs.push(PageRef {
                ids_hash: page_ids_hash(page.iter().map(|e| (e.hash, e.len))),
                body_hash: Sha256::digest(body).into(),
                body_offset,
                body_len: body.len() as u32,
                entries: page.len() as u32,
                image_offset,
                pack_offset,
            });
            image_offset += page.iter().map(|e| u64::from(e.len)).sum::<u64>();
            pack_offset += page.iter().map(|e| u64::from(e.comp_len)).sum::<u64>();
        }
        let head = IndexHead {
            image_len,
            image_sha256,
            params,
            chunk_count: entries.len() as u64,
            pack_len: pack_offset,
            pages: refs,
        };
        (head, bodies)
    }

    /// Encodes the head.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&self.image_len.to_le_bytes());
        out.extend_from_slice(&self.image_sha256);
        for v in [self.params.min, self.params.avg, self.params.max] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&(self.pages.len() as u32).to_le_bytes());
        out.extend_from_slice(&self.chunk_count.to_le_bytes());
        out.extend_from_slice(&self.pack_len.to_le_bytes());
        for p in &self.pages {
            out.extend_from_slice(&p.ids_hash);
            out.extend_from_slice(&p.body_hash);
            out.extend_from_slice(&p.body_offset.to_le_bytes());
            out.extend_from_slice(&p.body_len.to_le_bytes());
            out.extend_from_slice(&p.entries.to_le_bytes());
            out.extend_from_slice(&p.image_offset.to_le_bytes());
            out.extend_from_slice(&p.pack_offset.to_le_bytes());
        }
        out
    }

    /// Refuses a head length (as signed in the targets) above [`MAX_HEAD_LEN`] or too
    /// short to be a head, before anything of that length is fetched or allocated.
    pub fn check_head_len(len: u64) -> Result<(), IndexError> {
        if len > MAX_HEAD_LEN {
            return Err(IndexError::TooLarge {
                what: "head length",
                value: len,
                limit: MAX_HEAD_LEN,
            });
        }
        if len < HEADER_LEN as u64 {
            return Err(IndexError::Truncated {
                part: "head",
                needed: HEADER_LEN,
                found: len as usize,
            });
        }
        Ok(())
    }

    /// Decodes and checks a head (whose bytes already matched the signed sha256).
    pub fn decode(bytes: &[u8]) -> Result<Self, IndexError> {
        Self::check_head_len(bytes.len() as u64)?;
        let mut r = Cursor::new(bytes, "head");
        if r.take(8)? != MAGIC {
            return Err(IndexError::BadMagic);
        }
        let image_len = r.u64()?;
        let image_sha256 = r.array32()?;
        let params = ChunkParams {
            min: r.u32()?,
            avg: r.u32()?,
            max: r.u32()?,
        };
        let page_count = r.u32()? as usize;
        let chunk_count = r.u64()?;
        let pack_len = r.u64()?;
        let needed = HEADER_LEN + PAGE_REF_LEN * page_count;
        if bytes.len() != needed {
            return Err(IndexError::Truncated {
                part: "head",
                needed,
                found: bytes.len(),
            });
        }
        let mut pages = Vec::with_capacity(page_count);
        for _ in 0..page_count {
            pages.push(PageRef {
                ids_hash: r.array32()?,
                body_hash: r.array32()?,
                body_offset: r.u64()?,
                body_len: r.u32()?,
                entries: r.u32()?,
                image_offset: r.u64()?,
                pack_offset: r.u64()?,
            });
        }
        let head = IndexHead {
            image_len,
            image_sha256,
            params,
            chunk_count,
            pack_len,
            pages,
        };
        head.check()?;
        Ok(head)
    }

    fn check(&self) -> Result<(), IndexError> {
        let invalid = |reason: String| Err(IndexError::Invalid { reason });
        if self.params.max > MAX_CHUNK_LEN {
            return Err(IndexError::TooLarge {
                what: "maximum chunk length",
                value: u64::from(self.params.max),
                limit: u64::from(MAX_CHUNK_LEN),
            });
        }
        if !self.params.is_valid() {
            return invalid(format!("unusable chunk sizes {:?}", self.params));
        }
        let mut body_offset = self.encoded_len() as u64;
        let mut chunks = 0u64;
        let mut last_image = 0u64;
        let mut last_pack = 0u64;
        for (i, p) in self.pages.iter().enumerate() {
            if p.entries > MAX_PAGE_ENTRIES {
                return Err(IndexError::TooLarge {
                    what: "page entry count",
                    value: u64::from(p.entries),
                    limit: u64::from(MAX_PAGE_ENTRIES),
                });
            }
            if p.entries == 0 || u64::from(p.body_len) != u64::from(p.entries) * ENTRY_LEN as u64 {
                return invalid(format!("page {i} has a bad entry count or body length"));
            }
            if p.body_offset != body_offset {
                return invalid(format!("page {i}'s body is not where the previous ended"));
            }
            if p.image_offset < last_image || p.image_offset > self.image_len {
                return invalid(format!("page {i} has a bad image offset"));
            }
            if p.pack_offset < last_pack || p.pack_offset > self.pack_len {
                return invalid(format!("page {i} has a bad pack offset"));
            }
            if i == 0 && (p.image_offset != 0 || p.pack_offset != 0) {
                return invalid("the first page does not start at offset 0".into());
            }
            body_offset += u64::from(p.body_len);
            chunks += u64::from(p.entries);
            last_image = p.image_offset;
            last_pack = p.pack_offset;
        }
        if self.chunk_count > MAX_CHUNKS {
            return Err(IndexError::TooLarge {
                what: "chunk count",
                value: self.chunk_count,
                limit: MAX_CHUNKS,
            });
        }
        if chunks != self.chunk_count {
            return invalid(format!(
                "pages hold {chunks} chunks, header says {}",
                self.chunk_count
            ));
        }
        if self.pages.is_empty() != (self.image_len == 0) {
            return invalid("page table and image length disagree".into());
        }
        Ok(())
    }

    /// Raw image bytes covered by page `i`.
    pub fn page_image_len(&self, i: usize) -> u64 {
        let end = self
            .pages
            .get(i + 1)
            .map_or(self.image_len, |p| p.image_offset);
        end - self.pages[i].image_offset
    }

    /// Total length of the index file (head and all bodies).
    pub fn file_len(&self) -> u64 {
        self.encoded_len() as u64
            + self
                .pages
                .iter()
                .map(|p| u64::from(p.body_len))
                .sum::<u64>()
    }

    /// Decodes page `i`'s body, checking its hash, its identity hash and its lengths.
    pub fn decode_page(&self, i: usize, body: &[u8]) -> Result<Vec<ChunkEntry>, IndexError> {
        let page = self.pages.get(i).ok_or_else(|| IndexError::Invalid {
            reason: format!("there is no page {i}"),
        })?;
        if body.len() != page.body_len as usize {
            return Err(IndexError::PageHash { page: i });
        }
        let digest: [u8; 32] = Sha256::digest(body).into();
        if digest != page.body_hash {
            return Err(IndexError::PageHash { page: i });
        }
        let mut r = Cursor::new(body, "page");
        let mut entries = Vec::with_capacity(page.entries as usize);
        for _ in 0..page.entries {
            let mut hash = [0u8; 16];
            hash.copy_from_slice(r.take(16)?);
            entries.push(ChunkEntry {
                hash,
                len: r.u32()?,
                comp_len: r.u32()?,
            });
        }
        let invalid = |reason: String| Err(IndexError::Invalid { reason });
        if page_ids_hash(entries.iter().map(|e| (e.hash, e.len))) != page.ids_hash {
            return invalid(format!("page {i}'s entries do not match its identity"));
        }
        let raw: u64 = entries.iter().map(|e| u64::from(e.len)).sum();
        if raw != self.page_image_len(i) {
            return invalid(format!("page {i}'s chunks do not add up to its image span"));
        }
        if entries
            .iter()
            .any(|e| e.len == 0 || e.len > self.params.max || e.comp_len > zstd_bound(e.len))
        {
            return invalid(format!("page {i} has a chunk of impossible size"));
        }
        let pack_end = self
            .pages
            .get(i + 1)
            .map_or(self.pack_len, |p| p.pack_offset);
        let packed: u64 = entries.iter().map(|e| u64::from(e.comp_len)).sum();
        if page.pack_offset + packed != pack_end {
            return invalid(format!(
                "page {i}'s packed chunks do not fill its pack span"
            ));
        }
        Ok(entries)
    }
}

/// The most bytes zstd may take to store `len` bytes (its documented bound, with slack).
pub fn zstd_bound(len: u32) -> u32 {
    len + (len >> 8) + 1024
}

struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
    part: &'static str,
}

impl<'a> Cursor<'a> {
    fn new(bytes: &'a [u8], part: &'static str) -> Self {
        Self {
            bytes,
            pos: 0,
            part,
        }
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], IndexError> {
        let end = self.pos + n;
        if end > self.bytes.len() {
            return Err(IndexError::Truncated {
                part: self.part,
                needed: end,
                found: self.bytes.len(),
            });
        }
        let s = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u32(&mut self) -> Result<u32, IndexError> {
        let mut b = [0u8; 4];
        b.copy_from_slice(self.take(4)?);
        Ok(u32::from_le_bytes(b))
    }
    fn u64(&mut self) -> Result<u64, IndexError> {
        let mut b = [0u8; 8];
        b.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(b))
    }
    fn array32(&mut self) -> Result<[u8; 32], IndexError> {
        let mut b = [0u8; 32];
        b.copy_from_slice(self.take(32)?);
        Ok(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chunker::chunk_hash;
    use crate::page::paginate;

    fn sample() -> (IndexHead, Vec<u8>, Vec<ChunkEntry>) {
        let entries: Vec<ChunkEntry> = (0..1000u32)
            .map(|i| ChunkEntry {
                hash: chunk_hash(&i.to_le_bytes()),
                len: 5000 + i,
                comp_len: if i % 7 == 0 { 0 } else { 100 + i },
            })
            .collect();
        let hashes: Vec<_> = entries.iter().map(|e| e.hash).collect();
        let total = entries.iter().map(|e| u64::from(e.len)).sum();
        let (head, bodies) = IndexHead::build(
            total,
            [1; 32],
            ChunkParams::DEFAULT,
            &entries,
            &paginate(&hashes),
        );
        (head, bodies, entries)
    }

    #[test]
    fn head_and_pages_round_trip() {
        let (head, bodies, entries) = sample();
        let bytes = head.encode();
        let back = IndexHead::decode(&bytes).unwrap();
        assert_eq!(back, head);
        let mut all = Vec::new();
        for (i, p) in back.pages.iter().enumerate() {
            let at = (p.body_offset as usize) - bytes.len();
            all.extend(
                back.decode_page(i, &bodies[at..at + p.body_len as usize])
                    .unwrap(),
            );
        }
        assert_eq!(all, entries);
        assert_eq!(back.file_len(), (bytes.len() + bodies.len()) as u64);
    }

    #[test]
    fn rejects_tampering() {
        let (head, bodies, _) = sample();
        let bytes = head.encode();
        assert!(IndexHead::decode(&bytes[..bytes.len() - 1]).is_err());
        let mut bad = bytes.clone();
        bad[0] ^= 1;
        assert!(matches!(IndexHead::decode(&bad), Err(IndexError::BadMagic)));
        let p = &head.pages[0];
        let at = p.body_offset as usize - bytes.len();
        let mut body = bodies[at..at + p.body_len as usize].to_vec();
        body[3] ^= 1;
        assert!(matches!(
            head.decode_page(0, &body),
            Err(IndexError::PageHash { page: 0 })
        ));
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        // The head and pages come from the network: hostile bytes get an error, never a panic.
        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..1200)) {
            let _ = IndexHead::decode(&bytes);
            let mut framed = MAGIC.to_vec();
            framed.extend_from_slice(&bytes);
            if let Ok(head) = IndexHead::decode(&framed) {
                for i in 0..head.pages.len() {
                    let _ = head.decode_page(i, &bytes);
                }
            }
        }

        #[test]
        fn chunks_always_reassemble(data in proptest::collection::vec(any::<u8>(), 0..300_000)) {
            let mut r = crate::chunker::ChunkReader::new(&data[..], ChunkParams::DEFAULT);
            let mut joined = Vec::new();
            while let Some(c) = r.next_chunk().unwrap() {
                prop_assert!(c.len() <= ChunkParams::DEFAULT.max as usize);
                joined.extend_from_slice(c);
            }
            prop_assert_eq!(joined, data);
        }
    }
}
