//! The verity parameters `release add` signs beside an image: read from the sidecar
//! `<image>.verity` that `skerryctl image build` writes next to the slot image (one
//! line, `DATA_BLOCKS:HASH_START_BLOCK:ROOT_HASH:SALT`), parsed strictly and checked
//! against the image itself: the tree's top block must lie inside the image and hash,
//! with the salt, to the root hash. An image without a sidecar is released without
//! verity parameters (a board that requires them refuses such a release on install).

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use skerry_tuf::verity::{Verity, BLOCK};

use crate::error::ReleaseError;

/// The biggest sidecar read.
pub const MAX_SIDECAR: u64 = 1024;

/// `<image>.verity`.
pub fn sidecar_path(image: &Path) -> PathBuf {
    let mut s = image.as_os_str().to_owned();
    s.push(".verity");
    PathBuf::from(s)
}

fn bad(image: &Path, reason: String) -> ReleaseError {
    ReleaseError::BadVerity {
        path: sidecar_path(image),
        reason,
    }
}

/// The verity parameters of `image` from its sidecar, checked against the image; `None`
/// without a sidecar.
pub fn for_image(image: &Path) -> Result<Option<Verity>, ReleaseError> {
    let path = sidecar_path(image);
    let meta = match std::fs::metadata(&path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(ReleaseError::Io { path, source }),
    };
    if !meta.is_file() || meta.len() > MAX_SIDECAR {
        return Err(bad(
            image,
            format!("not a file of at most {MAX_SIDECAR} bytes"),
        ));
    }
    let text = std::fs::read_to_string(&path).map_err(|source| ReleaseError::Io {
        path: path.clone(),
        source,
    })?;
    let line = text.strip_suffix('\n').unwrap_or(&text);
    let verity = Verity::parse(line).map_err(|e| bad(image, e.to_string()))?;
    let salt = hex::decode(&verity.salt).map_err(|e| bad(image, e.to_string()))?;
    let mut f = std::fs::File::open(image).map_err(|source| ReleaseError::UnreadableImage {
        path: image.into(),
        source,
    })?;
    let len = f
        .metadata()
        .map_err(|source| ReleaseError::UnreadableImage {
            path: image.into(),
            source,
        })?
        .len();
    let top = verity.hash_start * BLOCK;
    if top + BLOCK > len {
        return Err(bad(
            image,
            format!("the tree's first block at byte {top} is beyond the image's {len} bytes"),
        ));
    }
    let mut block = vec![0u8; BLOCK as usize];
    f.seek(SeekFrom::Start(top))
        .and_then(|_| f.read_exact(&mut block))
        .map_err(|source| ReleaseError::UnreadableImage {
            path: image.into(),
            source,
        })?;
    let mut h = Sha256::new();
    h.update(&salt);
    h.update(&block);
    let root = hex::encode(h.finalize());
    if root != verity.root_hash {
        return Err(bad(
            image,
            format!(
                "the tree's top block hashes to {root}, not the root hash {} (a sidecar of another image?)",
                verity.root_hash
            ),
        ));
    }
    Ok(Some(verity))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A one-level tree: data blocks, then the block of their digests.
    fn image_with_tree(dir: &Path, salt: &[u8]) -> (PathBuf, String) {
        let mut bytes = vec![7u8; 2 * BLOCK as usize];
        let mut level = Vec::new();
        for b in bytes.chunks(BLOCK as usize) {
            level.extend_from_slice(&Sha256::new().chain_update(salt).chain_update(b).finalize());
        }
        level.resize(BLOCK as usize, 0);
        let root = hex::encode(
            Sha256::new()
                .chain_update(salt)
                .chain_update(&level)
                .finalize(),
        );
        bytes.extend_from_slice(&level);
        let image = dir.join("slot.img");
        std::fs::write(&image, bytes).unwrap();
        (image, root)
    }

    #[test]
    fn the_sidecar_is_checked_against_the_image() {
        let dir = tempfile::tempdir().unwrap();
        let salt = [0xabu8; 32];
        let (image, root) = image_with_tree(dir.path(), &salt);
        assert_eq!(for_image(&image).unwrap(), None);
        let value = format!("2:2:{root}:{}", hex::encode(salt));
        std::fs::write(sidecar_path(&image), format!("{value}\n")).unwrap();
        assert_eq!(for_image(&image).unwrap().unwrap().to_string(), value);

        let other = format!("2:2:{}:{}", "0".repeat(64), hex::encode(salt));
        std::fs::write(sidecar_path(&image), &other).unwrap();
        let e = for_image(&image).unwrap_err().to_string();
        assert!(e.contains("hashes to") && e.contains(".verity"), "{e}");

        std::fs::write(sidecar_path(&image), format!("2:3:{root}:")).unwrap();
        let e = for_image(&image).unwrap_err().to_string();
        assert!(e.contains("beyond the image"), "{e}");

        std::fs::write(sidecar_path(&image), "2:2:nope:").unwrap();
        let e = for_image(&image).unwrap_err().to_string();
        assert!(e.contains("ROOT_HASH"), "{e}");
    }
}
