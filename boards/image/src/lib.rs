//! Builds a board's OS image (docs/os-image.md): the slot image — ext4, read-only,
//! reproducible, holding the pinned Debian kernel, an initramfs whose `/init` is the
//! static skerryd, the modules the board lists, and the read-only root — and a
//! flashable GPT disk: an ESP with standalone GRUB-EFI, its environment and boot
//! script; slot A holding the slot image; slot B and the state partition zeros. No loop
//! devices or mounts: `mke2fs -d`, `mkfs.vfat` and mtools on files, `sgdisk` on the disk.
//! The slot image is what `skerryctl release add --image` signs.
//!
//! # Layout
//! - [`build`]: one build, start to end ([`build::build`], [`BuildRequest`]).
//! - [`kernel`]: the pinned `.deb`, unpacked; modules and their dependencies.
//! - [`slot`]: the slot tree and the initramfs; [`cpio`]: our `newc` writer.
//! - [`extension`]: directories and OCI layers laid into the root.
//! - [`ext4`]: packing the slot reproducibly; [`tree`]: the staged tree.
//! - [`esp`]: the FAT ESP and GRUB; [`boot_script`]: the text GRUB runs.
//! - [`verity`]: the slot's dm-verity hash tree and root hash.
//! - [`gpt`]: fixed GUIDs, the table, and reading it back.
//! - [`elf`]: is skerryd static; [`tools`]: host tools and their packages.

pub mod boot_script;
pub mod build;
pub mod cpio;
pub mod elf;
pub mod error;
pub mod esp;
pub mod ext4;
pub mod extension;
pub mod gpt;
pub mod kernel;
pub mod slot;
pub mod tools;
pub mod tree;
pub mod verity;

pub use build::{build, default_slot_out, metadata_path, BuildRequest, Built, DEFAULT_EPOCH};
pub use error::ImageError;
pub use extension::Extension;

/// A fault hook word for test builds (`/etc/skerry/fault`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultHook {
    PanicInitramfs,
    HangInitramfs,
    HangDaemon,
}

impl FaultHook {
    pub const ALL: [FaultHook; 3] = [
        FaultHook::PanicInitramfs,
        FaultHook::HangInitramfs,
        FaultHook::HangDaemon,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FaultHook::PanicInitramfs => "panic-initramfs",
            FaultHook::HangInitramfs => "hang-initramfs",
            FaultHook::HangDaemon => "hang-daemon",
        }
    }
}

impl std::str::FromStr for FaultHook {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        FaultHook::ALL
            .into_iter()
            .find(|h| h.as_str() == s)
            .ok_or_else(|| {
                let words: Vec<&str> = FaultHook::ALL.iter().map(|h| h.as_str()).collect();
                format!("unknown fault hook {s:?} (one of: {})", words.join(", "))
            })
    }
}
