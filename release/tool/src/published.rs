//! Reading a release already in the repository back: its chunk index, where each of its
//! chunks sits in its pack, its patch sets, and the bytes of any of its chunks.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

use skerry_chunks::{ChunkEntry, ChunkHash, IndexHead, PatchIndex};
use skerry_tuf::image::{
    consistent_path, index_target, pack_target, patch_index_target, PatchSetCustom,
};
use skerry_tuf::Targets;

use crate::error::ReleaseError;
use crate::repo::Repository;

/// One published release of a board, read back from the repository.
#[derive(Debug)]
pub struct PublishedRelease {
    pub board: String,
    pub version: String,
    pub head: IndexHead,
    /// Every chunk in image order.
    pub entries: Vec<ChunkEntry>,
    /// Where each distinct chunk is stored in the pack: hash → (offset, comp_len).
    pub stored: HashMap<ChunkHash, (u64, u32)>,
    pub index_target: String,
    pub index_path: PathBuf,
    pub pack_target: String,
    pub pack_path: PathBuf,
}

/// Where a target file lives under `REPO/targets/`, from its signed sha256.
pub fn target_path(
    repo: &Repository,
    targets: &Targets,
    name: &str,
) -> Result<PathBuf, ReleaseError> {
    let file = targets
        .targets
        .get(name)
        .ok_or_else(|| ReleaseError::Damaged {
            path: repo.targets_dir(),
            reason: format!("{name} is not a target"),
        })?;
    let sha = file
        .hashes
        .get("sha256")
        .ok_or_else(|| ReleaseError::Damaged {
            path: repo.targets_dir(),
            reason: format!("{name} has no sha256"),
        })?;
    Ok(repo.targets_dir().join(consistent_path(name, sha)))
}

impl PublishedRelease {
    /// Reads `board` `version` from the repository's current targets.
    pub fn read(
        repo: &Repository,
        targets: &Targets,
        board: &str,
        version: &str,
    ) -> Result<Self, ReleaseError> {
        let idx_name = index_target(board, version);
        if !targets.targets.contains_key(&idx_name) {
            return Err(ReleaseError::NoSuchRelease {
                board: board.into(),
                version: version.into(),
            });
        }
        let index_path = target_path(repo, targets, &idx_name)?;
        let pack_name = pack_target(board, version);
        let pack_path = target_path(repo, targets, &pack_name)?;
        let bytes = std::fs::read(&index_path).map_err(ReleaseError::io(&index_path))?;
        let damaged = |e: skerry_chunks::IndexError| ReleaseError::Damaged {
            path: index_path.clone(),
            reason: e.to_string(),
        };
        let head_len = bytes.len().min(
            skerry_chunks::index::HEADER_LEN
                + skerry_chunks::index::PAGE_REF_LEN * page_count(&bytes),
        );
        let head = IndexHead::decode(&bytes[..head_len]).map_err(damaged)?;
        let mut entries = Vec::with_capacity(head.chunk_count as usize);
        for (i, p) in head.pages.iter().enumerate() {
            let at = p.body_offset as usize;
            let body =
                bytes
                    .get(at..at + p.body_len as usize)
                    .ok_or_else(|| ReleaseError::Damaged {
                        path: index_path.clone(),
                        reason: format!("page {i} is past the end"),
                    })?;
            entries.extend(head.decode_page(i, body).map_err(damaged)?);
        }
        let mut stored = HashMap::new();
        let mut offset = 0u64;
        for e in &entries {
            if e.comp_len > 0 {
                stored.entry(e.hash).or_insert((offset, e.comp_len));
                offset += u64::from(e.comp_len);
            }
        }
        Ok(Self {
            board: board.into(),
            version: version.into(),
            head,
            entries,
            stored,
            index_target: idx_name,
            index_path,
            pack_target: pack_name,
            pack_path,
        })
    }

    /// The release's patch index against `base`, if one was published.
    pub fn patches_from(
        &self,
        repo: &Repository,
        targets: &Targets,
        base: &str,
    ) -> Result<Option<(PatchIndex, PatchSetCustom, String)>, ReleaseError> {
        let name = patch_index_target(&self.board, &self.version, base);
        let Some(file) = targets.targets.get(&name) else {
            return Ok(None);
        };
        let custom: PatchSetCustom = file
            .custom
            .clone()
            .and_then(|c| serde_json::from_value(c).ok())
            .ok_or_else(|| ReleaseError::Damaged {
                path: repo.targets_dir(),
                reason: format!("{name} has no skerry_patches fields"),
            })?;
        let path = target_path(repo, targets, &name)?;
        let bytes = std::fs::read(&path).map_err(ReleaseError::io(&path))?;
        let index = PatchIndex::decode(&bytes).map_err(|e| ReleaseError::Damaged {
            path,
            reason: e.to_string(),
        })?;
        Ok(Some((index, custom, name)))
    }
}

fn page_count(bytes: &[u8]) -> usize {
    bytes
        .get(60..64)
        .map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
}

/// Decompresses chunks of a published release from its pack, by hash.
pub struct ChunkSource<'a> {
    release: &'a PublishedRelease,
    pack: File,
    decompressor: zstd::bulk::Decompressor<'static>,
    max: usize,
}

impl std::fmt::Debug for ChunkSource<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChunkSource")
            .field("pack", &self.release.pack_path)
            .finish_non_exhaustive()
    }
}

impl<'a> ChunkSource<'a> {
    pub fn open(release: &'a PublishedRelease) -> Result<Self, ReleaseError> {
        let pack = File::open(&release.pack_path).map_err(ReleaseError::io(&release.pack_path))?;
        Ok(Self {
            release,
            pack,
            decompressor: zstd::bulk::Decompressor::new()
                .map_err(ReleaseError::io(&release.pack_path))?,
            max: release.head.params.max as usize,
        })
    }

    /// The bytes of the chunk named `hash`.
    pub fn chunk(&mut self, hash: &ChunkHash) -> Result<Vec<u8>, ReleaseError> {
        let path = &self.release.pack_path;
        let &(offset, comp_len) =
            self.release
                .stored
                .get(hash)
                .ok_or_else(|| ReleaseError::Damaged {
                    path: path.clone(),
                    reason: "a chunk of the index is not in the pack".into(),
                })?;
        let mut comp = vec![0u8; comp_len as usize];
        self.pack
            .read_exact_at(&mut comp, offset)
            .map_err(ReleaseError::io(path))?;
        let data = self
            .decompressor
            .decompress(&comp, self.max)
            .map_err(ReleaseError::io(path))?;
        if skerry_chunks::chunk_hash(&data) != *hash {
            return Err(ReleaseError::Damaged {
                path: path.clone(),
                reason: "a chunk in the pack does not match its name".into(),
            });
        }
        Ok(data)
    }
}
