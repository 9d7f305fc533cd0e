//! Building the patch set of a new release against one base release.
//!
//! For each distinct chunk of the new image that the base does not hold, a base region
//! is chosen by neighbourhood: the nearest earlier chunk of the new image that the base
//! also holds anchors the new chunk in the base, and the region is the base chunks around
//! where the new chunk would sit after that anchor (its byte distance from the anchor
//! carried over), at most [`REGION_BYTES`] and [`MAX_PATCH_BASE_CHUNKS`] chunks. The
//! chunk is compressed with zstd against that region; the patch is kept only when it
//! (with its index entry) is smaller than the chunk compressed alone.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;

use sha2::{Digest, Sha256};
use skerry_chunks::limits::MAX_PATCH_BASE_CHUNKS;
use skerry_chunks::patch::{make_patch, PATCH_ENTRY_LEN};
use skerry_chunks::{ChunkEntry, ChunkHash, PatchIndex};

use crate::error::ReleaseError;
use crate::published::{ChunkSource, PublishedRelease};

/// The base region a patch is made against, at most: about four average chunks on each
/// side of where the chunk sat, which keeps the device's dictionary small.
pub const REGION_BYTES: u64 = 128 * 1024;

/// zstd level for patches: patches are made once and fetched by a whole fleet.
pub const DEFAULT_PATCH_LEVEL: i32 = 19;

/// A patch set, written: the index bytes and the pack in a temporary file.
#[derive(Debug)]
pub struct BuiltPatches {
    pub base_version: String,
    pub index: PatchIndex,
    pub index_bytes: Vec<u8>,
    pub pack_len: u64,
    pub pack_sha256: [u8; 32],
    /// Compressed bytes of the full chunks the patches stand in for.
    pub replaced_bytes: u64,
}

/// Builds the patches of the image (`entries`, read from `image`) against `base`,
/// writing the patch pack to `pack_tmp`.
pub fn build_patches(
    image: &Path,
    entries: &[ChunkEntry],
    base: &PublishedRelease,
    pack_tmp: &Path,
    level: i32,
) -> Result<BuiltPatches, ReleaseError> {
    let input = File::open(image).map_err(ReleaseError::io(image))?;
    let out = File::create(pack_tmp).map_err(ReleaseError::io(pack_tmp))?;
    let mut pack = BufWriter::new(out);
    let mut pack_hash = Sha256::new();
    let mut source = ChunkSource::open(base)?;
    let mut cache: HashMap<ChunkHash, Vec<u8>> = HashMap::new();
    // Where each base chunk starts in the base image, and the first index of each hash.
    let mut base_at = Vec::with_capacity(base.entries.len() + 1);
    let mut base_index: HashMap<ChunkHash, usize> = HashMap::new();
    let mut at = 0u64;
    for (i, e) in base.entries.iter().enumerate() {
        base_at.push(at);
        base_index.entry(e.hash).or_insert(i);
        at += u64::from(e.len);
    }
    base_at.push(at);

    let mut index = PatchIndex {
        chunk_count: entries.len() as u32,
        base_chunk_count: base.entries.len() as u32,
        ..PatchIndex::default()
    };
    let mut replaced = 0u64;
    let mut seen = std::collections::HashSet::new();
    // After the latest chunk the base holds: (base index of the next base chunk, image
    // offset in the new image where that anchor ended).
    let mut anchor = (0usize, 0u64);
    let mut offset = 0u64;
    let mut chunk = Vec::new();
    for (position, e) in entries.iter().enumerate() {
        let here = offset;
        offset += u64::from(e.len);
        if let Some(&b) = base_index.get(&e.hash) {
            anchor = (b + 1, offset);
            continue;
        }
        if e.comp_len == 0 || !seen.insert(e.hash) {
            continue;
        }
        let region = pick_region(base, &base_at, anchor, here - anchor.1, e.len);
        if region.is_empty() {
            continue;
        }
        let mut dict = Vec::new();
        for &b in &region {
            let h = base.entries[b].hash;
            if !cache.contains_key(&h) {
                if cache.len() >= 64 {
                    cache.clear();
                }
                cache.insert(h, source.chunk(&h)?);
            }
            dict.extend_from_slice(&cache[&h]);
        }
        chunk.resize(e.len as usize, 0);
        input
            .read_exact_at(&mut chunk, here)
            .map_err(ReleaseError::io(image))?;
        let Some(patch) = make_patch(&chunk, &dict, level).map_err(ReleaseError::io(image))? else {
            continue;
        };
        let entry_cost = PATCH_ENTRY_LEN as u64;
        if patch.len() as u64 + entry_cost >= u64::from(e.comp_len) {
            continue;
        }
        pack.write_all(&patch).map_err(ReleaseError::io(pack_tmp))?;
        pack_hash.update(&patch);
        replaced += u64::from(e.comp_len);
        index.push(
            position as u32,
            patch.len() as u32,
            region[0] as u32,
            region.len() as u32,
        );
    }
    let file = pack.into_inner().map_err(|e| ReleaseError::Io {
        path: pack_tmp.into(),
        source: e.into_error(),
    })?;
    file.sync_all().map_err(ReleaseError::io(pack_tmp))?;
    Ok(BuiltPatches {
        base_version: base.version.clone(),
        index_bytes: index.encode(),
        pack_len: index.patches_len,
        index,
        pack_sha256: pack_hash.finalize().into(),
        replaced_bytes: replaced,
    })
}

/// The base chunks around where a new chunk of `len` bytes, `past` bytes after its
/// anchor, would sit in the base.
fn pick_region(
    base: &PublishedRelease,
    base_at: &[u64],
    (next, _): (usize, u64),
    past: u64,
    len: u32,
) -> Vec<usize> {
    let n = base.entries.len();
    if n == 0 {
        return Vec::new();
    }
    let start_at = base_at[next.min(n)];
    let centre = start_at + past + u64::from(len) / 2;
    let from = centre.saturating_sub(REGION_BYTES / 2);
    // The base chunk holding `from`, then forward while the region has room.
    let first = base_at
        .partition_point(|&a| a <= from)
        .saturating_sub(1)
        .min(n - 1);
    let mut region = Vec::new();
    let mut bytes = 0u64;
    let mut i = first;
    while i < n && region.len() < MAX_PATCH_BASE_CHUNKS as usize {
        let l = u64::from(base.entries[i].len);
        if bytes + l > REGION_BYTES && !region.is_empty() {
            break;
        }
        region.push(i);
        bytes += l;
        i += 1;
    }
    region
}
