//! The `custom` fields Skerry puts on its targets, so a device can find a board's image.
//!
//! Each release of a board is two targets: `BOARD/VERSION/image.idx` (the chunk index)
//! and `BOARD/VERSION/image.pack` (the compressed chunks). The index target carries
//! [`ImageRelease`] under `custom.skerry`.

use serde::{Deserialize, Serialize};

/// What the signed targets metadata says about one image release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRelease {
    pub board: String,
    pub version: String,
    pub channel: String,
    pub image_length: u64,
    pub image_sha256: String,
    /// BLAKE3 of the whole image (hex): the device hashes the slot as read back from the
    /// medium against this. Releases published before it existed lack it; the installer
    /// refuses them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_blake3: Option<String>,
    /// Bytes of the index head (header and page table) and its sha256: the device
    /// fetches the head alone and then only the pages it cannot rebuild from its seed.
    pub head_length: u64,
    pub head_sha256: String,
    /// The target name of the pack.
    pub pack: String,
    /// The slot's dm-verity parameters ([`crate::verity::Verity`]'s spelling), for a
    /// board that mounts its root verified; the install writes them beside the boot
    /// state for the slot it fills. Absent from releases of images without a tree.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verity: Option<String>,
}

/// `custom` of an index target: `{"skerry": {...}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageCustom {
    pub skerry: ImageRelease,
}

/// Target names of a release.
pub fn index_target(board: &str, version: &str) -> String {
    format!("{board}/{version}/image.idx")
}

/// Target name of a release's pack.
pub fn pack_target(board: &str, version: &str) -> String {
    format!("{board}/{version}/image.pack")
}

/// Where a consistent-snapshot target lives under `targets/`: the file name gets the
/// sha256 prefix (`BOARD/VERSION/<sha256>.image.idx`), as TUF clients expect.
pub fn consistent_path(target: &str, sha256_hex: &str) -> String {
    match target.rsplit_once('/') {
        Some((dir, name)) => format!("{dir}/{sha256_hex}.{name}"),
        None => format!("{sha256_hex}.{target}"),
    }
}

/// What the signed targets metadata says about the patches of one release against one
/// base release: `custom.skerry_patches` of the target `BOARD/VERSION/from-BASE.patch.idx`
/// (the patch index), whose patches are in `pack`. Installers that predate patches find
/// no `skerry` key here and skip the target, so the release installs from its full chunks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatchSet {
    pub board: String,
    pub version: String,
    pub base_version: String,
    /// Target name of the patch pack.
    pub pack: String,
    /// Patched chunks listed in the index.
    pub entries: u64,
}

/// `custom` of a patch index target: `{"skerry_patches": {...}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatchSetCustom {
    pub skerry_patches: PatchSet,
}

/// Target name of the patch index of `version` against `base`.
pub fn patch_index_target(board: &str, version: &str, base: &str) -> String {
    format!("{board}/{version}/from-{base}.patch.idx")
}

/// Target name of the patch pack of `version` against `base`.
pub fn patch_pack_target(board: &str, version: &str, base: &str) -> String {
    format!("{board}/{version}/from-{base}.patch.pack")
}
