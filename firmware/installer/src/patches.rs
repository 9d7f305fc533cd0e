//! Patched chunks: finding the patch sets of the selected release, deciding whether the
//! seed holds a set's base, fetching that set's patch index, and turning the plan's
//! fetched chunks into patches where the seed holds each patch's base region.
//!
//! The device holds a base when its seed, read up to the base image's signed length,
//! has the base image's signed BLAKE3 (measured during the seed scan): then the seed's
//! chunks up to that length are the base's chunks, one for one, and each patch's base
//! region is a run of them by position. The region's bytes are read back against the
//! names the scan gave them when the patch is applied, and the patched chunk is checked
//! against its own name before it is queued for writing. A device on no base, or any failure to get a patch set, installs from
//! full chunks (warned, never fatal); a bad patch falls back to its full chunk.

use sha2::{Digest, Sha256};
use skerry_chunks::{ChunkHash, PatchIndex};
use skerry_tuf::image::{
    index_target, patch_index_target, patch_pack_target, ImageCustom, PatchSetCustom,
};
use skerry_tuf::Targets;

use crate::error::InstallError;
use crate::plan::{Op, Plan, Source};
use crate::seed::SeedIndex;
use crate::select::{safe_name, target_path, SelectedRelease};
use crate::transport::Fetcher;

/// Whether the installer uses published patches.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PatchUse {
    /// When the seed holds a patch set's base (the default).
    #[default]
    WhenBaseHeld,
    /// Never: every missing chunk is fetched whole, as installers before patches did.
    Ignore,
}

/// A published patch set of the selected release against one base release.
#[derive(Debug, Clone)]
pub struct PatchSetRef {
    pub base_version: String,
    pub base_image_len: u64,
    pub base_blake3: [u8; 32],
    pub index_target: String,
    pub index_path: String,
    pub index_len: u64,
    pub index_sha256: String,
    pub pack_path: String,
    pub pack_len: u64,
}

/// The patch sets of `sel` whose base release is in the same signed targets (with its
/// whole-image BLAKE3). Sets with a name other than the one the release tool writes are
/// skipped, so no signed name leads outside the release.
pub fn patch_sets(targets: &Targets, sel: &SelectedRelease) -> Vec<PatchSetRef> {
    let board = &sel.release.board;
    let version = &sel.release.version;
    let mut out = Vec::new();
    if !safe_name(board) {
        return out;
    }
    for (name, file) in &targets.targets {
        let Some(custom) = &file.custom else { continue };
        let Ok(custom) = serde_json::from_value::<PatchSetCustom>(custom.clone()) else {
            continue;
        };
        let set = custom.skerry_patches;
        if set.board != *board || set.version != *version {
            continue;
        }
        let Ok(base) = semver::Version::parse(&set.base_version) else {
            continue;
        };
        let base_version = base.to_string();
        if *name != patch_index_target(board, version, &base_version)
            || set.pack != patch_pack_target(board, version, &base_version)
        {
            continue;
        }
        let Some(pack) = targets.targets.get(&set.pack) else {
            continue;
        };
        let Some(base_release) = targets
            .targets
            .get(&index_target(board, &base_version))
            .and_then(|f| serde_json::from_value::<ImageCustom>(f.custom.clone()?).ok())
            .map(|c| c.skerry)
        else {
            continue;
        };
        let mut base_blake3 = [0u8; 32];
        let Some(hex_blake3) = &base_release.image_blake3 else {
            continue;
        };
        if hex::decode_to_slice(hex_blake3, &mut base_blake3).is_err() {
            continue;
        }
        let (Some(index_path), Some(pack_path), Some(sha)) = (
            target_path(name, file),
            target_path(&set.pack, pack),
            file.hashes.get("sha256"),
        ) else {
            continue;
        };
        out.push(PatchSetRef {
            base_version,
            base_image_len: base_release.image_length,
            base_blake3,
            index_target: name.clone(),
            index_path,
            index_len: file.length,
            index_sha256: sha.clone(),
            pack_path,
            pack_len: pack.length,
        });
    }
    out
}

/// The set whose base the seed holds: its prefix of the base's length has the base's
/// signed BLAKE3.
pub fn held_set<'a>(sets: &'a [PatchSetRef], seed: &SeedIndex) -> Option<&'a PatchSetRef> {
    sets.iter().find(|s| {
        seed.prefix_blake3
            .iter()
            .any(|&(len, hash)| len == s.base_image_len && hash == s.base_blake3)
    })
}

/// Fetches and checks a patch set's index (its length against our limit before the
/// download, its sha256 against the signed one before it is parsed).
pub fn fetch_patch_index(fetcher: &Fetcher, set: &PatchSetRef) -> Result<PatchIndex, InstallError> {
    let index_err = |reason: String| InstallError::BadRelease {
        target: set.index_target.clone(),
        reason,
    };
    PatchIndex::check_len(set.index_len).map_err(|e| index_err(e.to_string()))?;
    let bytes = fetcher
        .get_range(&set.index_path, 0, set.index_len)
        .map_err(|source| InstallError::Fetch {
            what: format!("the patch index {}", set.index_target),
            source,
        })?;
    if hex::encode(Sha256::digest(&bytes)) != set.index_sha256 {
        return Err(InstallError::HashMismatch {
            what: format!("the patch index {}", set.index_target),
        });
    }
    let index = PatchIndex::decode(&bytes).map_err(|e| index_err(e.to_string()))?;
    if index.patches_len != set.pack_len {
        return Err(index_err(
            "the patch index disagrees with the signed patch pack length".into(),
        ));
    }
    Ok(index)
}

/// A patch the plan uses: where it is in the patch pack, where its base region sits in
/// the seed, and the region's chunks (to check them when they are read).
#[derive(Debug, Clone)]
pub struct PlannedPatch {
    pub patch_offset: u64,
    pub patch_len: u32,
    pub base_offset: u64,
    pub base: Vec<(ChunkHash, u32)>,
}

impl PlannedPatch {
    /// Bytes of the base region.
    pub fn base_len(&self) -> u64 {
        self.base.iter().map(|&(_, l)| u64::from(l)).sum()
    }
}

/// Where the plan's patches come from.
#[derive(Debug, Clone)]
pub struct PlannedPatches {
    pub pack_path: String,
    pub base_version: String,
    pub patches: Vec<PlannedPatch>,
}

/// Replaces each fetched chunk of `plan` that has a patch by that patch, when the patch
/// is smaller than the full chunk and its base region lies within the seed's chunks of
/// the base image (`seed` holds `set`'s base: see [`held_set`]). A patch index made for
/// another chunk count is not used at all.
pub fn attach(
    plan: &mut Plan,
    set: &PatchSetRef,
    index: PatchIndex,
    seed: &SeedIndex,
) -> Result<(), String> {
    if index.chunk_count as usize != plan.ops.len() {
        return Err(format!(
            "it lists {} chunks, the release has {}",
            index.chunk_count,
            plan.ops.len()
        ));
    }
    // The seed's chunks that end within the base image are the base's chunks (the last
    // one may be cut differently when the seed goes on past the image).
    let usable = seed
        .order
        .partition_point(|&(_, len, at)| at + u64::from(len) <= set.base_image_len);
    if usable > index.base_chunk_count as usize {
        return Err(format!(
            "it was made against {} base chunks, the seed holds {usable}",
            index.base_chunk_count
        ));
    }
    let mut patches = Vec::new();
    for e in &index.entries {
        let Some(op) = plan.ops.get_mut(e.chunk as usize) else {
            continue;
        };
        let Source::Pack { offset, comp_len } = op.source else {
            continue;
        };
        let (first, end) = (
            e.base_first as usize,
            (e.base_first + e.base_count) as usize,
        );
        if e.patch_len >= comp_len || end > usable {
            continue;
        }
        let run = &seed.order[first..end];
        patches.push(PlannedPatch {
            patch_offset: e.patch_offset,
            patch_len: e.patch_len,
            base_offset: run[0].2,
            base: run.iter().map(|&(h, l, _)| (h, l)).collect(),
        });
        *op = Op {
            source: Source::Patch {
                pack_offset: offset,
                comp_len,
                patch: patches.len() - 1,
            },
            ..*op
        };
    }
    plan.patches = Some(PlannedPatches {
        pack_path: set.pack_path.clone(),
        base_version: set.base_version.clone(),
        patches,
    });
    Ok(())
}
