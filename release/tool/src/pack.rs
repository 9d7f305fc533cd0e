//! Cutting an image into chunks and writing its pack and chunk index.

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use skerry_chunks::{chunk_hash, paginate, ChunkEntry, ChunkParams, ChunkReader, IndexHead};

use crate::error::ReleaseError;

/// zstd level for chunks: fast to make, and decompression speed barely depends on it.
pub const DEFAULT_LEVEL: i32 = 3;

/// An image cut, compressed and indexed; the pack is in a temporary file.
#[derive(Debug)]
pub struct PackedImage {
    pub image_len: u64,
    pub image_sha256: [u8; 32],
    /// BLAKE3 of the whole image, signed in the release's custom fields.
    pub image_blake3: [u8; 32],
    pub head: IndexHead,
    /// The whole index file: head then page bodies.
    pub index: Vec<u8>,
    pub pack_tmp: PathBuf,
    pub pack_len: u64,
    pub pack_sha256: [u8; 32],
    /// Every chunk in image order.
    pub entries: Vec<ChunkEntry>,
}

/// Chunks `image`, writing compressed, de-duplicated chunks to `pack_tmp`.
pub fn pack_image(
    image: &Path,
    pack_tmp: &Path,
    params: ChunkParams,
    level: i32,
) -> Result<PackedImage, ReleaseError> {
    let input = File::open(image).map_err(ReleaseError::io(image))?;
    let mut reader = ChunkReader::new(std::io::BufReader::with_capacity(1 << 20, input), params);
    let out = File::create(pack_tmp).map_err(ReleaseError::io(pack_tmp))?;
    let mut pack = BufWriter::with_capacity(1 << 20, out);
    let mut compressor = zstd::bulk::Compressor::new(level).map_err(ReleaseError::io(pack_tmp))?;
    let mut image_hash = Sha256::new();
    let mut image_blake3 = blake3::Hasher::new();
    let mut pack_hash = Sha256::new();
    let mut seen: HashSet<[u8; 16]> = HashSet::new();
    let mut entries = Vec::new();
    let (mut image_len, mut pack_len) = (0u64, 0u64);
    while let Some(chunk) = reader.next_chunk().map_err(ReleaseError::io(image))? {
        image_hash.update(chunk);
        image_blake3.update(chunk);
        image_len += chunk.len() as u64;
        let hash = chunk_hash(chunk);
        let comp_len = if seen.insert(hash) {
            let packed = compressor
                .compress(chunk)
                .map_err(ReleaseError::io(pack_tmp))?;
            pack.write_all(&packed)
                .map_err(ReleaseError::io(pack_tmp))?;
            pack_hash.update(&packed);
            pack_len += packed.len() as u64;
            packed.len() as u32
        } else {
            0
        };
        entries.push(ChunkEntry {
            hash,
            len: chunk.len() as u32,
            comp_len,
        });
    }
    if image_len == 0 {
        return Err(ReleaseError::EmptyImage { path: image.into() });
    }
    let file = pack.into_inner().map_err(|e| ReleaseError::Io {
        path: pack_tmp.into(),
        source: e.into_error(),
    })?;
    file.sync_all().map_err(ReleaseError::io(pack_tmp))?;
    let image_sha256: [u8; 32] = image_hash.finalize().into();
    let hashes: Vec<_> = entries.iter().map(|e| e.hash).collect();
    let (head, bodies) = IndexHead::build(
        image_len,
        image_sha256,
        params,
        &entries,
        &paginate(&hashes),
    );
    let mut index = head.encode();
    index.extend_from_slice(&bodies);
    Ok(PackedImage {
        image_len,
        image_sha256,
        image_blake3: image_blake3.finalize().into(),
        head,
        index,
        pack_tmp: pack_tmp.into(),
        pack_len,
        pack_sha256: pack_hash.finalize().into(),
        entries,
    })
}
