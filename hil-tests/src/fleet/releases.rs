//! The signed repository the fleet server hosts: keys generated beside it (they stay
//! offline, with the release tooling), release 2.0.0 for the simulated board cut from
//! the factory image (1.0.0, which every board ships with in slot A), published into
//! the server's `DATA/repository` before the server starts.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::Context as _;
use skerry_chunks::ChunkParams;
use skerry_release::{AddImage, Expiries, KeySet, Repository};

use crate::images;
use crate::updates::BOARD;

/// The factory release every board runs at first.
pub const FACTORY_VERSION: &str = "1.0.0";
/// The release rolled out.
pub const NEW_VERSION: &str = "2.0.0";
/// The channel the releases are published in and the devices follow.
pub const CHANNEL: &str = "stable";

/// The published repository and the root a device pins.
#[derive(Debug)]
pub struct FleetReleases {
    /// The pinned root metadata, as a file devices name in their UpdateConfig.
    pub trusted_root: PathBuf,
}

impl FleetReleases {
    /// Generates keys in `keys`, initializes `DATA/repository` for the server's `data`
    /// directory and publishes [`NEW_VERSION`] (healthy once booted) into it.
    pub fn publish(data: &Path, keys: &Path) -> anyhow::Result<Self> {
        let keys = KeySet::generate(keys, 1).context("generating the release keys")?;
        let repo = Repository::new(&data.join("repository"));
        let expiries = Expiries::default();
        let now = SystemTime::now();
        skerry_release::init(&keys, &repo, 1, &expiries, now)
            .context("initializing the server's repository")?;
        let image = images::release(&images::factory(), NEW_VERSION, true, 0x2000);
        let work = data.parent().unwrap_or(data);
        let path = work.join(format!("image-{NEW_VERSION}.img"));
        std::fs::write(&path, image).with_context(|| format!("writing {}", path.display()))?;
        let add = AddImage {
            board: BOARD,
            version: NEW_VERSION,
            channel: CHANNEL,
            image: &path,
            params: ChunkParams::DEFAULT,
            level: 3,
        };
        skerry_release::add_image(&keys, &repo, &add, &expiries, now)
            .with_context(|| format!("publishing {NEW_VERSION}"))?;
        let root = repo.metadata_dir().join("1.root.json");
        let trusted_root = work.join("trusted-root.json");
        std::fs::copy(&root, &trusted_root)
            .with_context(|| format!("copying {} to {}", root.display(), trusted_root.display()))?;
        Ok(FleetReleases { trusted_root })
    }
}
