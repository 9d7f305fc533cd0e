//! Which objects a device needs to go from a base release to a release: the answer an
//! offline bundle is cut from, and the figure a delta benchmark reports.
//!
//! A device on `base` (its active slot holds exactly `base`'s image) copies every chunk
//! `base` holds, repeats chunks it already wrote, and for each other chunk fetches the
//! patch against `base` when one is published, or else the full chunk. This is the same
//! choice the installer makes (`skerry_installer::plan`).

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use skerry_chunks::{ChunkHash, PatchEntry};
use skerry_tuf::image::patch_pack_target;

use crate::error::ReleaseError;
use crate::published::{target_path, PublishedRelease};
use crate::repo::Repository;

/// A byte range of one target file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRange {
    /// The target name (`BOARD/VERSION/image.pack`).
    pub target: String,
    /// The file under `REPO/targets/` (consistent-snapshot name).
    pub path: PathBuf,
    pub offset: u64,
    pub len: u64,
}

/// Everything a device on the base needs of a release, besides the TUF metadata.
#[derive(Debug, Clone, Default)]
pub struct NeededObjects {
    /// Target files needed whole: the chunk index, and the patch index when patches
    /// are used. (A device fetches only the index pages its seed cannot rebuild; a
    /// bundle carries the whole index.)
    pub whole: Vec<ObjectRange>,
    /// Full chunks, in pack order, adjacent ranges merged.
    pub chunks: Vec<ObjectRange>,
    /// Patches, in patch pack order, adjacent ranges merged.
    pub patches: Vec<ObjectRange>,
    pub chunks_reused: u64,
    pub chunks_full: u64,
    pub chunks_patched: u64,
}

impl NeededObjects {
    /// Bytes of chunks and patches.
    pub fn payload_bytes(&self) -> u64 {
        self.chunks.iter().chain(&self.patches).map(|r| r.len).sum()
    }
    /// Bytes of everything listed (whole files included).
    pub fn total_bytes(&self) -> u64 {
        self.payload_bytes() + self.whole.iter().map(|r| r.len).sum::<u64>()
    }
}

/// What a device on `base` (`None`: an empty slot, a full install) needs to install
/// `board` `version` from the repository as currently published.
pub fn objects_needed(
    repo: &Repository,
    board: &str,
    version: &str,
    base: Option<&str>,
) -> Result<NeededObjects, ReleaseError> {
    let current = repo.current()?;
    let targets = &current.targets.signed;
    let release = PublishedRelease::read(repo, targets, board, version)?;
    let index_len = std::fs::metadata(&release.index_path)
        .map_err(ReleaseError::io(&release.index_path))?
        .len();
    let mut out = NeededObjects {
        whole: vec![ObjectRange {
            target: release.index_target.clone(),
            path: release.index_path.clone(),
            offset: 0,
            len: index_len,
        }],
        ..NeededObjects::default()
    };
    let (held, patches) = match base {
        Some(base) => {
            let base_release = PublishedRelease::read(repo, targets, board, base)?;
            let held: HashSet<ChunkHash> = base_release.entries.iter().map(|e| e.hash).collect();
            let patches = release.patches_from(repo, targets, base)?;
            (held, patches)
        }
        None => (HashSet::new(), None),
    };
    let patch_by_chunk: std::collections::HashMap<u32, &PatchEntry> = patches
        .as_ref()
        .map(|(index, _, _)| index.entries.iter().map(|e| (e.chunk, e)).collect())
        .unwrap_or_default();
    let patch_pack = match (&patches, base) {
        (Some((_, _, name)), Some(base)) => {
            let path = target_path(repo, targets, name)?;
            out.whole.push(ObjectRange {
                target: name.clone(),
                len: std::fs::metadata(&path)
                    .map_err(ReleaseError::io(&path))?
                    .len(),
                path,
                offset: 0,
            });
            let pack = patch_pack_target(board, version, base);
            Some((target_path(repo, targets, &pack)?, pack))
        }
        _ => None,
    };
    let mut written: HashSet<ChunkHash> = HashSet::new();
    for (position, e) in release.entries.iter().enumerate() {
        if held.contains(&e.hash) || !written.insert(e.hash) {
            out.chunks_reused += 1;
            continue;
        }
        // A device on the base holds every base region (its seed is the base image).
        match (patch_by_chunk.get(&(position as u32)), &patch_pack) {
            (Some(p), Some((path, target))) => {
                out.chunks_patched += 1;
                push_merged(
                    &mut out.patches,
                    target,
                    path,
                    p.patch_offset,
                    p.patch_len.into(),
                );
            }
            _ => {
                let &(offset, comp_len) =
                    release
                        .stored
                        .get(&e.hash)
                        .ok_or_else(|| ReleaseError::Damaged {
                            path: release.index_path.clone(),
                            reason: "a chunk is stored nowhere in the pack".into(),
                        })?;
                out.chunks_full += 1;
                push_merged(
                    &mut out.chunks,
                    &release.pack_target,
                    &release.pack_path,
                    offset,
                    comp_len.into(),
                );
            }
        }
    }
    Ok(out)
}

fn push_merged(list: &mut Vec<ObjectRange>, target: &str, path: &Path, offset: u64, len: u64) {
    if let Some(last) = list.last_mut() {
        if last.offset + last.len == offset {
            last.len += len;
            return;
        }
    }
    list.push(ObjectRange {
        target: target.into(),
        path: path.to_path_buf(),
        offset,
        len,
    });
}
