//! The slot's dm-verity hash tree, computed here (no device-mapper, no `veritysetup` on
//! the build host) in the layout `veritysetup format --format=1 --hash=sha256
//! --data-block-size=4096 --hash-block-size=4096 --no-superblock` writes: the ext4 data
//! first, then the tree right after it in the same slot partition, its top level first
//! and the level over the data blocks last, every digest `sha256(salt || block)`, each
//! hash block zero-padded. The salt is fixed per board and version so a build is
//! reproducible. `veritysetup verify` accepts what this writes (tests/verity_interop.rs).

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::error::ImageError;

/// Data and hash block size (the ext4 block size too).
pub const BLOCK: u64 = 4096;
/// sha256 digest bytes.
const DIGEST: usize = 32;
/// Digests in one hash block.
const FANOUT: u64 = BLOCK / DIGEST as u64;
/// The most data blocks a slot may have (64 GiB), so the tree kept in memory is bounded
/// (32 bytes a block: 512 MiB of digests at this limit).
pub const MAX_DATA_BLOCKS: u64 = 1 << 24;

/// What the device needs to set up the verified root, recorded in the image metadata
/// and passed on the kernel command line.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct VerityParams {
    pub format: u32,
    pub hash_algorithm: &'static str,
    pub data_block_size: u64,
    pub hash_block_size: u64,
    pub data_blocks: u64,
    /// Byte offset of the tree in the slot (= data_blocks * BLOCK).
    pub hash_offset: u64,
    pub root_hash: String,
    pub salt: String,
}

impl VerityParams {
    /// `skerry.verity=` value: `DATA_BLOCKS:HASH_START_BLOCK:ROOT_HASH:SALT`, plain
    /// characters only so it passes grub.cfg's argument filter.
    pub fn kernel_arg(&self) -> String {
        format!("skerry.verity={}", self.env_value())
    }

    /// The value alone, as the boot environment keeps it in `SKERRY_VERITY_<slot>`.
    pub fn env_value(&self) -> String {
        format!(
            "{}:{}:{}:{}",
            self.data_blocks,
            self.hash_offset / BLOCK,
            self.root_hash,
            self.salt
        )
    }
}

/// Hash blocks per level for `data_blocks`, the level over the data first.
pub fn level_blocks(data_blocks: u64) -> Vec<u64> {
    let mut levels = Vec::new();
    let mut n = data_blocks;
    loop {
        n = n.div_ceil(FANOUT);
        levels.push(n);
        if n <= 1 {
            return levels;
        }
    }
}

/// Bytes of the tree for `data_blocks`.
pub fn tree_bytes(data_blocks: u64) -> u64 {
    level_blocks(data_blocks).iter().sum::<u64>() * BLOCK
}

/// How many data blocks fit a partition of `size` bytes with their tree after them.
pub fn data_blocks_for(size: u64) -> u64 {
    let total = size / BLOCK;
    // The tree for all of it is an upper bound for the tree of what is left.
    total.saturating_sub(tree_bytes(total) / BLOCK)
}

/// The salt of a slot: sha256 of the board name and version.
pub fn salt_for(board: &str, version: &str) -> [u8; DIGEST] {
    Sha256::digest(format!("skerry-verity-salt\0{board}\0{version}").as_bytes()).into()
}

fn digest(salt: &[u8], block: &[u8]) -> [u8; DIGEST] {
    let mut h = Sha256::new();
    h.update(salt);
    h.update(block);
    h.finalize().into()
}

/// Packs digests into zero-padded hash blocks.
fn blocks_of(digests: &[[u8; DIGEST]]) -> Vec<u8> {
    let per = FANOUT as usize;
    let mut out = Vec::with_capacity(digests.len().div_ceil(per) * BLOCK as usize);
    for chunk in digests.chunks(per) {
        for d in chunk {
            out.extend_from_slice(d);
        }
        out.resize(out.len().next_multiple_of(BLOCK as usize), 0);
    }
    out
}

/// Hashes the first `data_blocks` blocks of `image` and writes the tree at
/// `data_blocks * BLOCK` in the same file.
pub fn append_tree(
    image: &Path,
    data_blocks: u64,
    salt: &[u8],
) -> Result<VerityParams, ImageError> {
    if data_blocks == 0 || data_blocks > MAX_DATA_BLOCKS {
        return Err(ImageError::Input {
            what: format!("the verity data of {}", image.display()),
            reason: format!("{data_blocks} blocks; 1 to {MAX_DATA_BLOCKS} are taken"),
        });
    }
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(image)
        .map_err(ImageError::io("opening", image))?;
    let mut level = Vec::with_capacity(data_blocks as usize);
    let mut block = vec![0u8; BLOCK as usize];
    for _ in 0..data_blocks {
        f.read_exact(&mut block).map_err(ImageError::io(
            "reading (shorter than its data blocks)",
            image,
        ))?;
        level.push(digest(salt, &block));
    }
    // Levels bottom-up; written top-down.
    let mut stored: Vec<Vec<u8>> = Vec::new();
    loop {
        let bytes = blocks_of(&level);
        let top = bytes.len() as u64 == BLOCK;
        level = bytes
            .chunks(BLOCK as usize)
            .map(|b| digest(salt, b))
            .collect();
        stored.push(bytes);
        if top {
            break;
        }
    }
    let root = level[0];
    let hash_offset = data_blocks * BLOCK;
    f.seek(SeekFrom::Start(hash_offset))
        .map_err(ImageError::io("seeking in", image))?;
    for bytes in stored.iter().rev() {
        f.write_all(bytes)
            .map_err(ImageError::io("writing the verity tree to", image))?;
    }
    f.sync_all().map_err(ImageError::io("flushing", image))?;
    Ok(VerityParams {
        format: 1,
        hash_algorithm: "sha256",
        data_block_size: BLOCK,
        hash_block_size: BLOCK,
        data_blocks,
        hash_offset,
        root_hash: hex::encode(root),
        salt: hex::encode(salt),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_shrink_to_one_block() {
        assert_eq!(level_blocks(1), vec![1]);
        assert_eq!(level_blocks(128), vec![1]);
        assert_eq!(level_blocks(129), vec![2, 1]);
        assert_eq!(level_blocks(128 * 128 + 1), vec![129, 2, 1]);
    }

    #[test]
    fn the_data_and_its_tree_fit_the_partition() {
        for size in [512u64 << 20, (64 << 20) + 4096 * 7, 1 << 30] {
            let d = data_blocks_for(size);
            assert!(d * BLOCK + tree_bytes(d) <= size, "size {size}");
            assert!(d * BLOCK + tree_bytes(d) + 2 * BLOCK * 128 > size / 2);
        }
    }
}
