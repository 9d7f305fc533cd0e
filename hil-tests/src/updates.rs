//! Where a board's new images come from: a signed TUF repository on disk, cut into chunks
//! by the release tooling and installed by the device's installer engine, with the
//! running slot as the seed. The same code paths `skerryctl release` and
//! `skerryctl install` use.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use skerry_boot_state::SlotName;
use skerry_chunks::ChunkParams;
use skerry_installer::install::NoProgress;
use skerry_installer::{install, open_url, InstallOptions, InstallReport};
use skerry_release::{AddImage, Expiries, KeySet, Repository};

use crate::board::{BoardError, SimBoard};
use crate::images;

/// The board name the demo releases are published for.
pub const BOARD: &str = "sim-x86";

/// Which release to install.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Release {
    /// 1.1.0: a few blocks changed; healthy once booted.
    Upgrade,
    /// 1.2.0: a few more blocks changed; boots but never gets healthy.
    Broken,
}

impl Release {
    pub fn version(self) -> &'static str {
        match self {
            Release::Upgrade => "1.1.0",
            Release::Broken => "1.2.0",
        }
    }

    fn semver(self) -> semver::Version {
        match self {
            Release::Upgrade => semver::Version::new(1, 1, 0),
            Release::Broken => semver::Version::new(1, 2, 0),
        }
    }
}

/// A signed repository holding the demo's releases, and the root a device trusts.
#[derive(Debug)]
pub struct SignedReleases {
    repo: PathBuf,
    trusted_root: Vec<u8>,
}

/// Why the repository could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ReleasesError {
    #[error("publishing release {version} in {}", repo.display())]
    Publish {
        version: &'static str,
        repo: PathBuf,
        #[source]
        source: skerry_release::ReleaseError,
    },
    #[error("cannot access {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl SignedReleases {
    /// Generates keys under `dir`, initializes a repository, and publishes the upgrade
    /// and the broken release cut from `factory` (the image the board shipped with).
    pub fn publish(dir: &Path, factory: &[u8]) -> Result<Self, ReleasesError> {
        let repo_dir = dir.join("repo");
        let publish_err = |version| {
            let repo = repo_dir.clone();
            move |source| ReleasesError::Publish {
                version,
                repo,
                source,
            }
        };
        let keys = KeySet::generate(&dir.join("keys"), 1).map_err(publish_err("keys"))?;
        let repo = Repository::new(&repo_dir);
        let expiries = Expiries::default();
        let now = SystemTime::now();
        skerry_release::init(&keys, &repo, 1, &expiries, now).map_err(publish_err("root"))?;
        let upgrade = images::release(factory, Release::Upgrade.version(), true, 0x1100);
        let broken = images::release(&upgrade, Release::Broken.version(), false, 0x1200);
        for (release, image) in [(Release::Upgrade, upgrade), (Release::Broken, broken)] {
            let path = dir.join(format!("image-{}.img", release.version()));
            std::fs::write(&path, image).map_err(|source| ReleasesError::Io {
                path: path.clone(),
                source,
            })?;
            let add = AddImage {
                board: BOARD,
                version: release.version(),
                channel: "stable",
                image: &path,
                params: ChunkParams::DEFAULT,
                level: 3,
            };
            skerry_release::add_image(&keys, &repo, &add, &expiries, now)
                .map_err(publish_err(release.version()))?;
        }
        let root_path = repo.metadata_dir().join("1.root.json");
        let trusted_root = std::fs::read(&root_path).map_err(|source| ReleasesError::Io {
            path: root_path,
            source,
        })?;
        Ok(SignedReleases {
            repo: repo_dir,
            trusted_root,
        })
    }

    /// Installs `release` into `slot` of `board` from the repository over `file://`,
    /// remembering trust in `device_state`, and starts the slot's trial.
    pub fn install(
        &self,
        board: &mut SimBoard,
        slot: &SlotName,
        release: Release,
        device_state: &Path,
    ) -> Result<InstallReport, BoardError> {
        let update_err = |source: Box<dyn std::error::Error + Send + Sync>| BoardError::Update {
            slot: slot.clone(),
            source,
        };
        let transport = open_url(
            &format!("file://{}", self.repo.display()),
            std::time::Duration::from_secs(30),
        )
        .map_err(|e| update_err(Box::new(e)))?;
        let mut report = None;
        board.install_with(slot, |target, seed| {
            let options = InstallOptions {
                transport: Arc::clone(&transport),
                trusted_root: self.trusted_root.clone(),
                state_dir: device_state.to_owned(),
                board: BOARD.into(),
                channel: None,
                version: Some(release.semver()),
                slot: target.to_owned(),
                slot_size: None,
                seed: Some(seed.to_owned()),
                retry: Default::default(),
                clock: SystemTime::now(),
            };
            report = Some(install(&options, &NoProgress).map_err(|e| update_err(Box::new(e)))?);
            Ok(())
        })?;
        report.ok_or_else(|| update_err("the installer reported nothing".into()))
    }
}
