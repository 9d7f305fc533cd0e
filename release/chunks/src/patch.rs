//! Patched chunks: a chunk of a new image stored as a zstd frame compressed against a
//! region of a base image that devices already hold, and the patch index that lists them.
//!
//! ```text
//! patch index = header (24 bytes) ‖ entries (88 bytes each)
//! header: "SKRYPAT1" ‖ entry_count u32 ‖ reserved u32 (0) ‖ patches_len u64
//! entry:  chunk_hash [16] ‖ chunk_len u32 ‖ patch_offset u64 ‖ patch_len u32 ‖
//!         patch_hash [16] ‖ base_first [16] ‖ base_count u32 ‖ base_len u32 ‖ base_id [16]
//! ```
//! All integers little-endian. The base region of a patch is `base_count` consecutive
//! chunks of the base image starting with the chunk named `base_first`; `base_id` names
//! that run ([`region_id`]: the BLAKE3 of its chunks' names and lengths) and `base_len`
//! is its length. A device finds the run in its seed (every seed chunk is named by the
//! BLAKE3 of its bytes, and read back against that name), checks the run's id, and so
//! holds exactly the bytes the patch was made against. The patch bytes sit in a patch
//! pack at `patch_offset`; `patch_hash` is their BLAKE3 (first 16 bytes), so only signed
//! bytes reach the decoder. The result is checked against `chunk_hash` like every chunk.
//!
//! The index and the pack are separate signed targets beside the release's chunk index,
//! which stays as it was: an installer that does not know patches never sees them.

use crate::chunker::{chunk_hash, ChunkHash};
use crate::index::zstd_bound;
use crate::limits::{
    MAX_CHUNKS, MAX_CHUNK_LEN, MAX_PATCH_BASE_BYTES, MAX_PATCH_BASE_CHUNKS, MAX_PATCH_INDEX_LEN,
    MAX_PATCH_WINDOW_LOG,
};

const MAGIC: &[u8; 8] = b"SKRYPAT1";
/// Bytes of the patch index header.
pub const PATCH_HEADER_LEN: usize = 24;
/// Bytes of one entry.
pub const PATCH_ENTRY_LEN: usize = 88;
/// The magic of a formatted zstd dictionary: a base region starting with it would be
/// read by zstd as a dictionary, not as raw content, so no patch is made against it.
const ZSTD_DICT_MAGIC: [u8; 4] = [0x37, 0xa4, 0x30, 0xec];

/// Why a patch index or a patch was refused.
#[derive(Debug, thiserror::Error)]
pub enum PatchError {
    #[error("patch index is truncated: {needed} bytes needed, {found} present")]
    Truncated { needed: usize, found: usize },
    #[error("not a Skerry patch index (bad magic)")]
    BadMagic,
    #[error("patch index is invalid: {reason}")]
    Invalid { reason: String },
    #[error("patch {what} is {value}, more than the {limit} this device accepts")]
    TooLarge {
        what: &'static str,
        value: u64,
        limit: u64,
    },
    #[error("patch for chunk {chunk} does not match its signed hash")]
    PatchHash { chunk: String },
    #[error("patch for chunk {chunk} cannot be applied: {reason}")]
    Undecodable { chunk: String, reason: String },
    #[error("patch for chunk {chunk} gave bytes that do not match the chunk's name")]
    WrongResult { chunk: String },
}

/// One base chunk a patch was made against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BaseChunk {
    pub hash: ChunkHash,
    pub len: u32,
}

/// The base region a patch was made against: a run of consecutive base chunks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BaseRegion {
    pub first: ChunkHash,
    pub count: u32,
    pub len: u32,
    /// [`region_id`] of the run.
    pub id: ChunkHash,
}

impl BaseRegion {
    /// The region of the run `chunks`.
    pub fn of(chunks: &[BaseChunk]) -> Self {
        Self {
            first: chunks.first().map_or([0; 16], |c| c.hash),
            count: chunks.len() as u32,
            len: chunks.iter().map(|c| c.len).sum(),
            id: region_id(chunks),
        }
    }

    /// Whether `chunks` is this region's run.
    pub fn is_run(&self, chunks: &[BaseChunk]) -> bool {
        chunks.len() == self.count as usize
            && chunks.first().is_some_and(|c| c.hash == self.first)
            && chunks.iter().map(|c| u64::from(c.len)).sum::<u64>() == u64::from(self.len)
            && region_id(chunks) == self.id
    }
}

/// Names a run of chunks: BLAKE3 (first 16 bytes) of their names and lengths, in order.
pub fn region_id(chunks: &[BaseChunk]) -> ChunkHash {
    let mut h = blake3::Hasher::new();
    for c in chunks {
        h.update(&c.hash);
        h.update(&c.len.to_le_bytes());
    }
    let mut out = [0u8; 16];
    out.copy_from_slice(&h.finalize().as_bytes()[..16]);
    out
}

/// One patched chunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatchEntry {
    pub chunk: ChunkHash,
    pub chunk_len: u32,
    pub patch_offset: u64,
    pub patch_len: u32,
    pub patch_hash: ChunkHash,
    pub base: BaseRegion,
}

impl PatchEntry {
    /// Bytes of the base region.
    pub fn base_len(&self) -> u64 {
        u64::from(self.base.len)
    }
}

/// A decoded patch index.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PatchIndex {
    pub entries: Vec<PatchEntry>,
    /// Bytes of the patch pack.
    pub patches_len: u64,
}

impl PatchIndex {
    /// Encodes the index.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(PATCH_HEADER_LEN + self.entries.len() * PATCH_ENTRY_LEN);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(self.entries.len() as u32).to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&self.patches_len.to_le_bytes());
        for e in &self.entries {
            out.extend_from_slice(&e.chunk);
            out.extend_from_slice(&e.chunk_len.to_le_bytes());
            out.extend_from_slice(&e.patch_offset.to_le_bytes());
            out.extend_from_slice(&e.patch_len.to_le_bytes());
            out.extend_from_slice(&e.patch_hash);
            out.extend_from_slice(&e.base.first);
            out.extend_from_slice(&e.base.count.to_le_bytes());
            out.extend_from_slice(&e.base.len.to_le_bytes());
            out.extend_from_slice(&e.base.id);
        }
        out
    }

    /// Refuses a signed index length above [`MAX_PATCH_INDEX_LEN`] before it sizes a
    /// download.
    pub fn check_len(len: u64) -> Result<(), PatchError> {
        if len > MAX_PATCH_INDEX_LEN {
            return Err(PatchError::TooLarge {
                what: "index length",
                value: len,
                limit: MAX_PATCH_INDEX_LEN,
            });
        }
        if len < PATCH_HEADER_LEN as u64 {
            return Err(PatchError::Truncated {
                needed: PATCH_HEADER_LEN,
                found: len as usize,
            });
        }
        Ok(())
    }

    /// Decodes and checks an index (whose bytes already matched their signed sha256).
    /// Every count is checked against the bytes present and our limits before anything
    /// is allocated for it.
    pub fn decode(bytes: &[u8]) -> Result<Self, PatchError> {
        Self::check_len(bytes.len() as u64)?;
        let mut r = Reader { bytes, pos: 0 };
        if r.take(8)? != MAGIC {
            return Err(PatchError::BadMagic);
        }
        let count = r.u32()?;
        let reserved = r.u32()?;
        let patches_len = r.u64()?;
        if u64::from(count) > MAX_CHUNKS {
            return Err(PatchError::TooLarge {
                what: "entry count",
                value: u64::from(count),
                limit: MAX_CHUNKS,
            });
        }
        let needed = PATCH_HEADER_LEN as u64 + u64::from(count) * PATCH_ENTRY_LEN as u64;
        if needed != bytes.len() as u64 {
            return Err(PatchError::Truncated {
                needed: usize::try_from(needed).unwrap_or(usize::MAX),
                found: bytes.len(),
            });
        }
        let invalid = |reason: String| PatchError::Invalid { reason };
        if reserved != 0 {
            return Err(invalid("the reserved header word is not 0".into()));
        }
        let mut entries = Vec::with_capacity(count as usize);
        for i in 0..count {
            let entry = PatchEntry {
                chunk: r.hash()?,
                chunk_len: r.u32()?,
                patch_offset: r.u64()?,
                patch_len: r.u32()?,
                patch_hash: r.hash()?,
                base: BaseRegion {
                    first: r.hash()?,
                    count: r.u32()?,
                    len: r.u32()?,
                    id: r.hash()?,
                },
            };
            check_entry(&entry, patches_len)
                .map_err(|reason| invalid(format!("entry {i}: {reason}")))?;
            entries.push(entry);
        }
        Ok(Self {
            entries,
            patches_len,
        })
    }
}

fn check_entry(e: &PatchEntry, patches_len: u64) -> Result<(), String> {
    if e.chunk_len == 0 || e.chunk_len > MAX_CHUNK_LEN {
        return Err(format!("chunk length {} out of range", e.chunk_len));
    }
    if e.patch_len == 0 || e.patch_len > zstd_bound(e.chunk_len) {
        return Err(format!("patch length {} out of range", e.patch_len));
    }
    if e.patch_offset
        .checked_add(u64::from(e.patch_len))
        .is_none_or(|end| end > patches_len)
    {
        return Err("patch lies outside the patch pack".into());
    }
    if e.base.count == 0 || e.base.count > MAX_PATCH_BASE_CHUNKS {
        return Err(format!(
            "a base region of {} chunks (1 to {MAX_PATCH_BASE_CHUNKS} allowed)",
            e.base.count
        ));
    }
    if e.base_len() == 0 || e.base_len() > MAX_PATCH_BASE_BYTES {
        return Err(format!(
            "base region of {} bytes, more than {MAX_PATCH_BASE_BYTES}",
            e.base_len()
        ));
    }
    Ok(())
}

/// Makes a patch of `chunk` against `base` (the base region's bytes), at zstd `level`.
/// `None` when zstd cannot use the region as raw content.
pub fn make_patch(chunk: &[u8], base: &[u8], level: i32) -> std::io::Result<Option<Vec<u8>>> {
    if base.starts_with(&ZSTD_DICT_MAGIC) || base.is_empty() {
        return Ok(None);
    }
    let mut c = zstd::bulk::Compressor::with_dictionary(level, base)?;
    c.include_checksum(false)?;
    c.include_contentsize(true)?;
    c.include_dictid(false)?;
    c.compress(chunk).map(Some)
}

/// Applies `patch` (already checked against the entry's `patch_hash`, see
/// [`check_patch_bytes`]) to `base`, the base region's bytes. Bounded before anything
/// is allocated: the base region is at most [`MAX_PATCH_BASE_BYTES`], the frame must be
/// one frame declaring exactly `chunk_len` bytes of content and a window of at most
/// 2^[`MAX_PATCH_WINDOW_LOG`], and the output buffer is `chunk_len` bytes (at most
/// [`MAX_CHUNK_LEN`]). The result is checked against the chunk's name.
pub fn apply_patch(entry: &PatchEntry, patch: &[u8], base: &[u8]) -> Result<Vec<u8>, PatchError> {
    let name = hex16(&entry.chunk);
    let undecodable = |reason: String| PatchError::Undecodable {
        chunk: name.clone(),
        reason,
    };
    if entry.chunk_len == 0 || entry.chunk_len > MAX_CHUNK_LEN {
        return Err(PatchError::TooLarge {
            what: "output length",
            value: u64::from(entry.chunk_len),
            limit: u64::from(MAX_CHUNK_LEN),
        });
    }
    if base.len() as u64 > MAX_PATCH_BASE_BYTES || base.len() as u64 != entry.base_len() {
        return Err(PatchError::TooLarge {
            what: "base region",
            value: base.len() as u64,
            limit: entry.base_len().min(MAX_PATCH_BASE_BYTES),
        });
    }
    if base.starts_with(&ZSTD_DICT_MAGIC) {
        return Err(undecodable("the base region is not raw content".into()));
    }
    let header = frame_header(patch).map_err(undecodable)?;
    if header.content_size != Some(u64::from(entry.chunk_len)) {
        return Err(undecodable(format!(
            "the frame declares {:?} bytes, the chunk has {}",
            header.content_size, entry.chunk_len
        )));
    }
    if header.window > 1u64 << MAX_PATCH_WINDOW_LOG {
        return Err(PatchError::TooLarge {
            what: "window",
            value: header.window,
            limit: 1u64 << MAX_PATCH_WINDOW_LOG,
        });
    }
    match zstd::zstd_safe::find_frame_compressed_size(patch) {
        Ok(n) if n == patch.len() => {}
        _ => return Err(undecodable("not exactly one zstd frame".into())),
    }
    let mut d =
        zstd::bulk::Decompressor::with_dictionary(base).map_err(|e| undecodable(e.to_string()))?;
    d.set_parameter(zstd::zstd_safe::DParameter::WindowLogMax(
        MAX_PATCH_WINDOW_LOG,
    ))
    .map_err(|e| undecodable(e.to_string()))?;
    let data = d
        .decompress(patch, entry.chunk_len as usize)
        .map_err(|e| undecodable(e.to_string()))?;
    if data.len() != entry.chunk_len as usize || chunk_hash(&data) != entry.chunk {
        return Err(PatchError::WrongResult { chunk: name });
    }
    Ok(data)
}

/// Checks patch bytes against the entry's signed `patch_hash` and length.
pub fn check_patch_bytes(entry: &PatchEntry, patch: &[u8]) -> Result<(), PatchError> {
    if patch.len() != entry.patch_len as usize || chunk_hash(patch) != entry.patch_hash {
        return Err(PatchError::PatchHash {
            chunk: hex16(&entry.chunk),
        });
    }
    Ok(())
}

/// What a zstd frame header declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    pub content_size: Option<u64>,
    /// The window the decoder needs (the content size for a single-segment frame).
    pub window: u64,
}

/// Reads a zstd frame header (RFC 8878, 3.1.1.1) without decoding anything.
pub fn frame_header(frame: &[u8]) -> Result<FrameHeader, String> {
    const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
    if frame.len() < 6 || frame[..4] != ZSTD_MAGIC {
        return Err("not a zstd frame".into());
    }
    let fhd = frame[4];
    let single_segment = fhd & 0x20 != 0;
    if fhd & 0x08 != 0 {
        return Err("reserved bit set in the frame header".into());
    }
    let dict_id_len = [0usize, 1, 2, 4][usize::from(fhd & 3)];
    let fcs_len = match (fhd >> 6, single_segment) {
        (0, false) => 0,
        (0, true) => 1,
        (1, _) => 2,
        (2, _) => 4,
        _ => 8,
    };
    let mut at = 5;
    let mut window = None;
    if !single_segment {
        let wd = frame[at];
        at += 1;
        let log = 10 + u64::from(wd >> 3);
        let base = 1u64 << log;
        window = Some(base + (base / 8) * u64::from(wd & 7));
    }
    at += dict_id_len;
    let end = at + fcs_len;
    if frame.len() < end {
        return Err("truncated frame header".into());
    }
    let mut raw = [0u8; 8];
    raw[..fcs_len].copy_from_slice(&frame[at..end]);
    let value = u64::from_le_bytes(raw);
    let content_size = match fcs_len {
        0 => None,
        2 => Some(value + 256),
        _ => Some(value),
    };
    let window = match (window, content_size) {
        (Some(w), _) => w,
        (None, Some(c)) => c,
        (None, None) => return Err("a single-segment frame without a content size".into()),
    };
    Ok(FrameHeader {
        content_size,
        window,
    })
}

fn hex16(h: &ChunkHash) -> String {
    h.iter().map(|b| format!("{b:02x}")).collect()
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], PatchError> {
        let end = self.pos + n;
        if end > self.bytes.len() {
            return Err(PatchError::Truncated {
                needed: end,
                found: self.bytes.len(),
            });
        }
        let s = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u32(&mut self) -> Result<u32, PatchError> {
        let mut b = [0u8; 4];
        b.copy_from_slice(self.take(4)?);
        Ok(u32::from_le_bytes(b))
    }
    fn u64(&mut self) -> Result<u64, PatchError> {
        let mut b = [0u8; 8];
        b.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(b))
    }
    fn hash(&mut self) -> Result<ChunkHash, PatchError> {
        let mut b = [0u8; 16];
        b.copy_from_slice(self.take(16)?);
        Ok(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noise(n: usize, seed: u64) -> Vec<u8> {
        let mut s = seed | 1;
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                s as u8
            })
            .collect()
    }

    fn entry_for(chunk: &[u8], base: &[u8], patch: &[u8]) -> PatchEntry {
        PatchEntry {
            chunk: chunk_hash(chunk),
            chunk_len: chunk.len() as u32,
            patch_offset: 0,
            patch_len: patch.len() as u32,
            patch_hash: chunk_hash(patch),
            base: BaseRegion::of(&[BaseChunk {
                hash: chunk_hash(base),
                len: base.len() as u32,
            }]),
        }
    }

    #[test]
    fn a_small_edit_patches_small_and_applies_exactly() {
        let base = noise(60_000, 7);
        let mut chunk = base[1000..41_000].to_vec();
        chunk[20_000..20_010].copy_from_slice(b"0123456789");
        let patch = make_patch(&chunk, &base, 3).unwrap().unwrap();
        let alone = zstd::bulk::compress(&chunk, 3).unwrap();
        assert!(
            patch.len() * 20 < alone.len(),
            "{} vs {}",
            patch.len(),
            alone.len()
        );
        let e = entry_for(&chunk, &base, &patch);
        check_patch_bytes(&e, &patch).unwrap();
        assert_eq!(apply_patch(&e, &patch, &base).unwrap(), chunk);
        let h = frame_header(&patch).unwrap();
        assert!(h.window <= 1 << MAX_PATCH_WINDOW_LOG, "{h:?}");
    }

    #[test]
    fn a_wrong_base_or_tampered_patch_is_refused() {
        let base = noise(30_000, 9);
        let chunk = base[..20_000].to_vec();
        let patch = make_patch(&chunk, &base, 3).unwrap().unwrap();
        let e = entry_for(&chunk, &base, &patch);
        let mut other = base.clone();
        other[5] ^= 1;
        assert!(apply_patch(&e, &patch, &other).is_err());
        let mut bad = patch.clone();
        let last = bad.len() - 1;
        bad[last] ^= 0x40;
        assert!(matches!(
            check_patch_bytes(&e, &bad),
            Err(PatchError::PatchHash { .. })
        ));
        assert!(apply_patch(&e, &bad, &base).is_err());
        assert!(apply_patch(&e, &patch, &base[..100]).is_err());
    }

    #[test]
    fn index_round_trips_and_refuses_bad_counts() {
        let idx = PatchIndex {
            patches_len: 500,
            entries: vec![PatchEntry {
                chunk: [1; 16],
                chunk_len: 4096,
                patch_offset: 10,
                patch_len: 90,
                patch_hash: [2; 16],
                base: BaseRegion::of(&[
                    BaseChunk {
                        hash: [3; 16],
                        len: 5000,
                    },
                    BaseChunk {
                        hash: [4; 16],
                        len: 6000,
                    },
                ]),
            }],
        };
        let bytes = idx.encode();
        assert_eq!(PatchIndex::decode(&bytes).unwrap(), idx);
        assert!(PatchIndex::decode(&bytes[..bytes.len() - 1]).is_err());
        let mut huge = bytes.clone();
        huge[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(PatchIndex::decode(&huge).is_err());
        let mut outside = idx.clone();
        outside.patches_len = 50;
        assert!(PatchIndex::decode(&outside.encode()).is_err());
        assert!(PatchIndex::check_len(MAX_PATCH_INDEX_LEN + 1).is_err());
    }
}
