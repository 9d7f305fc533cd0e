//! The arm64 board's [`ReleaseFactory`]: a release is a slot image (ext4) holding the
//! pinned arm64 kernel and an initramfs whose `/init` plays the release ([`guest`]).
//! These releases are installed host-side ([`crate::rig::Board::install_host_side`]),
//! so nothing is signed or served: a bad signature is something only a device's
//! installer can refuse, and this board has none.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context as _};

use super::guest::{self, init_script};
use super::media::build_slot_image;
use super::Arm64Site;
use crate::rig::{PublishedRelease, ReleaseFactory, ReleaseRequest, Unsupported};

/// Builds one board's releases into its own directory.
#[derive(Debug)]
pub struct Arm64Releases {
    site: Arc<Arm64Site>,
    dir: PathBuf,
    versions: BTreeSet<semver::Version>,
}

impl Arm64Releases {
    /// A factory writing its slot images into `dir`; the site's first release counts
    /// as published.
    pub fn new(site: &Arc<Arm64Site>, dir: PathBuf) -> Arm64Releases {
        let mut versions = BTreeSet::new();
        versions.insert(site.first_version().clone());
        Arm64Releases {
            site: Arc::clone(site),
            dir,
            versions,
        }
    }

    /// The fault words its releases can carry.
    pub fn faults() -> &'static [&'static str] {
        guest::FAULTS
    }
}

impl ReleaseFactory for Arm64Releases {
    fn publish(&mut self, release: &ReleaseRequest) -> anyhow::Result<PublishedRelease> {
        if self.versions.contains(&release.version) {
            bail!("{} was already published on this board", release.version);
        }
        let init =
            init_script(&release.version, &release.property).map_err(|what| Unsupported {
                board: super::BOARD_NAME.into(),
                what,
            })?;
        let initrd = guest::initramfs(self.site.guest(), &init)?;
        let image = self.dir.join(format!("slot-{}.ext4", release.version));
        build_slot_image(&image, &self.site.guest().kernel, &initrd, &release.version)
            .with_context(|| format!("building release {}", release.version))?;
        let pack_bytes = std::fs::metadata(&image)?.len();
        self.versions.insert(release.version.clone());
        Ok(PublishedRelease {
            version: release.version.clone(),
            property: release.property.clone(),
            image,
            pack_bytes,
        })
    }
}
