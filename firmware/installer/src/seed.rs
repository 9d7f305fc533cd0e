//! The seed: the active slot, cut exactly as the release tool cut the images, so every
//! chunk it holds is known by hash and every index page it reproduces is known by
//! identity hash.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use skerry_chunks::{chunk_hash, page_ids_hash, paginate, ChunkHash, ChunkParams, ChunkReader};

use crate::error::InstallError;
use crate::install::Progress;

/// Where the seed's chunks are, and which index pages it reproduces.
#[derive(Debug, Default)]
pub struct SeedIndex {
    pub path: Option<PathBuf>,
    /// Chunk hash → (offset in the seed, length).
    pub chunks: HashMap<ChunkHash, (u64, u32)>,
    /// Page identity → the page's (hash, length) entries.
    pub pages: HashMap<[u8; 32], Vec<(ChunkHash, u32)>>,
    pub bytes_scanned: u64,
    /// Every chunk in seed order: (hash, length, offset).
    pub order: Vec<(ChunkHash, u32, u64)>,
    /// BLAKE3 of the seed's first `len` bytes, for each length asked for in
    /// [`scan_marked`](Self::scan_marked) that the seed reaches.
    pub prefix_blake3: Vec<(u64, [u8; 32])>,
}

impl SeedIndex {
    /// An empty seed (a full install).
    pub fn none() -> Self {
        Self::default()
    }

    /// Cuts `path` (at most `limit` bytes of it) with `params`.
    pub fn scan(
        path: &Path,
        params: ChunkParams,
        limit: u64,
        progress: &dyn Progress,
    ) -> Result<Self, InstallError> {
        Self::scan_marked(path, params, limit, &[], progress)
    }

    /// Like [`scan`](Self::scan), also measuring the BLAKE3 of the seed's first `len`
    /// bytes for each of `marks` (the base images' lengths, to tell which base the seed
    /// holds).
    pub fn scan_marked(
        path: &Path,
        params: ChunkParams,
        limit: u64,
        marks: &[u64],
        progress: &dyn Progress,
    ) -> Result<Self, InstallError> {
        let mut marks: Vec<u64> = marks.iter().copied().filter(|&m| m > 0).collect();
        marks.sort_unstable();
        marks.dedup();
        let mut next_mark = 0;
        let mut whole = blake3::Hasher::new();
        let mut prefix_blake3 = Vec::new();
        let mut order = Vec::new();
        use std::io::Read;
        let file = File::open(path).map_err(InstallError::io("open the seed", path))?;
        let reader = std::io::BufReader::with_capacity(1 << 20, file.take(limit));
        let mut chunker = ChunkReader::new(reader, params);
        let mut entries: Vec<(ChunkHash, u32)> = Vec::new();
        let mut chunks = HashMap::new();
        let mut offset = 0u64;
        while let Some(chunk) = chunker
            .next_chunk()
            .map_err(InstallError::io("read the seed", path))?
        {
            let hash = chunk_hash(chunk);
            let len = chunk.len() as u32;
            if next_mark < marks.len() {
                let mut done = 0usize;
                while let Some(&m) = marks.get(next_mark) {
                    let end = offset + u64::from(len);
                    if m > end {
                        break;
                    }
                    let upto = (m - offset) as usize;
                    whole.update(&chunk[done..upto]);
                    done = upto;
                    prefix_blake3.push((m, *whole.finalize().as_bytes()));
                    next_mark += 1;
                }
                whole.update(&chunk[done..]);
            }
            chunks.entry(hash).or_insert((offset, len));
            order.push((hash, len, offset));
            entries.push((hash, len));
            offset += u64::from(len);
            progress.advance(u64::from(len));
        }
        let hashes: Vec<ChunkHash> = entries.iter().map(|e| e.0).collect();
        let mut pages = HashMap::new();
        for range in paginate(&hashes) {
            let page = entries[range].to_vec();
            pages.insert(page_ids_hash(page.iter().copied()), page);
        }
        Ok(Self {
            path: Some(path.into()),
            chunks,
            pages,
            bytes_scanned: offset,
            order,
            prefix_blake3,
        })
    }
}
