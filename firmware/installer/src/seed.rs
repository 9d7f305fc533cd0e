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
            chunks.entry(hash).or_insert((offset, len));
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
        })
    }
}
