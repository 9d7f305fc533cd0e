//! Patched chunks: a chunk of a new image stored as a zstd frame compressed against a
//! region of a base image that devices already hold, and the patch index that lists them.
//!
//! ```text
//! patch index = header (32 bytes) ‖ entries (16 bytes each)
//! header: "SKRYPAT2" ‖ entry_count u32 ‖ chunk_count u32 ‖ base_chunk_count u32 ‖
//!         reserved u32 (0) ‖ patches_len u64
//! entry:  chunk u32 ‖ patch_len u32 ‖ base_first u32 ‖ base_count u32
//! ```
//! All integers little-endian. `chunk` is the patched chunk's position in the release's
//! chunk index (of `chunk_count` chunks; its name and length are there), entries in
//! increasing `chunk` order; each patch follows the previous one in the patch pack (the
//! first at offset 0), `patch_len` bytes. The base region is the `base_count` chunks of
//! the base image (of `base_chunk_count` chunks) from position `base_first`, one after
//! the other. A device whose seed is the base image (its whole-image BLAKE3 is signed
//! with the base release) cuts it into exactly those chunks, so it holds exactly the
//! bytes the patch was made against; it still checks each base chunk against the name
//! its scan gave it when it reads the region, and the result against the chunk's name.
//!
//! The index and the pack are separate signed targets beside the release's chunk index,
//! which stays as it was: an installer that does not know patches never sees them.

use crate::chunker::{chunk_hash, ChunkHash};
use crate::index::zstd_bound;
use crate::limits::{
    MAX_CHUNKS, MAX_CHUNK_LEN, MAX_PATCH_BASE_BYTES, MAX_PATCH_BASE_CHUNKS, MAX_PATCH_INDEX_LEN,
    MAX_PATCH_WINDOW_LOG,
};

const MAGIC: &[u8; 8] = b"SKRYPAT2";
/// Bytes of the patch index header.
pub const PATCH_HEADER_LEN: usize = 32;
/// Bytes of one entry.
pub const PATCH_ENTRY_LEN: usize = 16;
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
    #[error("patch for chunk {chunk} cannot be applied: {reason}")]
    Undecodable { chunk: String, reason: String },
    #[error("patch for chunk {chunk} gave bytes that do not match the chunk's name")]
    WrongResult { chunk: String },
}

/// One patched chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PatchEntry {
    /// Position of the chunk in the release's chunk index.
    pub chunk: u32,
    pub patch_len: u32,
    /// Where the patch starts in the patch pack (the sum of the earlier patches' lengths).
    pub patch_offset: u64,
    /// First base chunk (its position in the base image) and how many follow.
    pub base_first: u32,
    pub base_count: u32,
}

/// A decoded patch index.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PatchIndex {
    pub entries: Vec<PatchEntry>,
    /// Chunks in the release's index and in the base's.
    pub chunk_count: u32,
    pub base_chunk_count: u32,
    /// Bytes of the patch pack.
    pub patches_len: u64,
}

impl PatchIndex {
    /// Appends an entry for chunk `chunk` (after every earlier one) whose patch of
    /// `patch_len` bytes follows the earlier patches in the pack.
    pub fn push(&mut self, chunk: u32, patch_len: u32, base_first: u32, base_count: u32) {
        self.entries.push(PatchEntry {
            chunk,
            patch_len,
            patch_offset: self.patches_len,
            base_first,
            base_count,
        });
        self.patches_len += u64::from(patch_len);
    }

    /// Encodes the index.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(PATCH_HEADER_LEN + self.entries.len() * PATCH_ENTRY_LEN);
        out.extend_from_slice(MAGIC);
        for v in [
            self.entries.len() as u32,
            self.chunk_count,
            self.base_chunk_count,
            0,
        ] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&self.patches_len.to_le_bytes());
        for e in &self.entries {
            for v in [e.chunk, e.patch_len, e.base_first, e.base_count] {
                out.extend_from_slice(&v.to_le_bytes());
            }
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
        let chunk_count = r.u32()?;
        let base_chunk_count = r.u32()?;
        let reserved = r.u32()?;
        let patches_len = r.u64()?;
        for (what, value) in [
            ("entry count", count),
            ("chunk count", chunk_count),
            ("base chunk count", base_chunk_count),
        ] {
            if u64::from(value) > MAX_CHUNKS {
                return Err(PatchError::TooLarge {
                    what,
                    value: u64::from(value),
                    limit: MAX_CHUNKS,
                });
            }
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
        let mut index = PatchIndex {
            entries: Vec::with_capacity(count as usize),
            chunk_count,
            base_chunk_count,
            patches_len: 0,
        };
        for i in 0..count {
            let (chunk, patch_len, base_first, base_count) =
                (r.u32()?, r.u32()?, r.u32()?, r.u32()?);
            if index.entries.last().is_some_and(|last| chunk <= last.chunk) || chunk >= chunk_count
            {
                return Err(invalid(format!(
                    "entry {i} names chunk {chunk} out of order or range"
                )));
            }
            if patch_len == 0 || patch_len > zstd_bound(MAX_CHUNK_LEN) {
                return Err(invalid(format!(
                    "entry {i} has a patch of {patch_len} bytes"
                )));
            }
            if base_count == 0 || base_count > MAX_PATCH_BASE_CHUNKS {
                return Err(invalid(format!(
                    "entry {i} has a base region of {base_count} chunks (1 to {MAX_PATCH_BASE_CHUNKS} allowed)"
                )));
            }
            if u64::from(base_first) + u64::from(base_count) > u64::from(base_chunk_count) {
                return Err(invalid(format!(
                    "entry {i}'s base region is past the base's chunks"
                )));
            }
            index.push(chunk, patch_len, base_first, base_count);
        }
        if index.patches_len != patches_len {
            return Err(invalid(format!(
                "the patches add up to {} bytes, the header says {patches_len}",
                index.patches_len
            )));
        }
        Ok(index)
    }
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

/// Applies `patch` to `base` (the base region's bytes) to get the chunk named `chunk`
/// of `chunk_len` bytes. Bounded before anything is allocated: the base region is at
/// most [`MAX_PATCH_BASE_BYTES`], the frame must be one frame declaring exactly
/// `chunk_len` bytes of content and a window of at most 2^[`MAX_PATCH_WINDOW_LOG`], and
/// the output buffer is `chunk_len` bytes (at most [`MAX_CHUNK_LEN`]). The result is
/// checked against the chunk's name.
pub fn apply_patch(
    patch: &[u8],
    base: &[u8],
    chunk: &ChunkHash,
    chunk_len: u32,
) -> Result<Vec<u8>, PatchError> {
    let name = hex16(chunk);
    let undecodable = |reason: String| PatchError::Undecodable {
        chunk: name.clone(),
        reason,
    };
    if chunk_len == 0 || chunk_len > MAX_CHUNK_LEN {
        return Err(PatchError::TooLarge {
            what: "output length",
            value: u64::from(chunk_len),
            limit: u64::from(MAX_CHUNK_LEN),
        });
    }
    if base.is_empty() || base.len() as u64 > MAX_PATCH_BASE_BYTES {
        return Err(PatchError::TooLarge {
            what: "base region",
            value: base.len() as u64,
            limit: MAX_PATCH_BASE_BYTES,
        });
    }
    if base.starts_with(&ZSTD_DICT_MAGIC) {
        return Err(undecodable("the base region is not raw content".into()));
    }
    let header = frame_header(patch).map_err(undecodable)?;
    if header.content_size != Some(u64::from(chunk_len)) {
        return Err(undecodable(format!(
            "the frame declares {:?} bytes, the chunk has {chunk_len}",
            header.content_size
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
        .decompress(patch, chunk_len as usize)
        .map_err(|e| undecodable(e.to_string()))?;
    if data.len() != chunk_len as usize || chunk_hash(&data) != *chunk {
        return Err(PatchError::WrongResult { chunk: name });
    }
    Ok(data)
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
        let name = chunk_hash(&chunk);
        assert_eq!(
            apply_patch(&patch, &base, &name, chunk.len() as u32).unwrap(),
            chunk
        );
        let h = frame_header(&patch).unwrap();
        assert!(h.window <= 1 << MAX_PATCH_WINDOW_LOG, "{h:?}");
    }

    #[test]
    fn a_wrong_base_a_tampered_patch_or_another_name_is_refused() {
        let base = noise(30_000, 9);
        let chunk = base[..20_000].to_vec();
        let patch = make_patch(&chunk, &base, 3).unwrap().unwrap();
        let name = chunk_hash(&chunk);
        let len = chunk.len() as u32;
        let mut other = base.clone();
        other[5] ^= 1;
        assert!(apply_patch(&patch, &other, &name, len).is_err());
        let mut bad = patch.clone();
        let last = bad.len() - 1;
        bad[last] ^= 0x40;
        assert!(apply_patch(&bad, &base, &name, len).is_err());
        assert!(apply_patch(&patch, &base[..100], &name, len).is_err());
        assert!(matches!(
            apply_patch(&patch, &base, &[0; 16], len),
            Err(PatchError::WrongResult { .. })
        ));
        assert!(apply_patch(&patch, &base, &name, len + 1).is_err());
    }

    #[test]
    fn index_round_trips_and_refuses_bad_counts() {
        let mut idx = PatchIndex {
            chunk_count: 100,
            base_chunk_count: 90,
            ..PatchIndex::default()
        };
        idx.push(3, 90, 10, 2);
        idx.push(7, 40, 80, 8);
        let bytes = idx.encode();
        assert_eq!(PatchIndex::decode(&bytes).unwrap(), idx);
        assert_eq!(idx.entries[1].patch_offset, 90);
        assert!(PatchIndex::decode(&bytes[..bytes.len() - 1]).is_err());
        let mut huge = bytes.clone();
        huge[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(PatchIndex::decode(&huge).is_err());
        let mut past = idx.clone();
        past.base_chunk_count = 87;
        assert!(PatchIndex::decode(&past.encode()).is_err());
        let mut order = idx.clone();
        order.entries[1].chunk = 3;
        assert!(PatchIndex::decode(&order.encode()).is_err());
        let mut sum = bytes.clone();
        sum[24] ^= 1;
        assert!(PatchIndex::decode(&sum).is_err());
        assert!(PatchIndex::check_len(MAX_PATCH_INDEX_LEN + 1).is_err());
    }
}
