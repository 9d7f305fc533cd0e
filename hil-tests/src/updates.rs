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
use skerry_installer::{
    install, open_url, Downgrade, InstallOptions, InstallReport, NoBootState, RetryLog, RetryPolicy,
};
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
    retry: RetryPolicy,
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
            retry: RetryPolicy::default(),
        })
    }

    /// The repository's directory (serve it, or use it as `file://`).
    pub fn repo_dir(&self) -> &Path {
        &self.repo
    }

    /// The root metadata a device pins (`1.root.json`).
    pub fn trusted_root(&self) -> &[u8] {
        &self.trusted_root
    }

    /// A mirror of this repository under `dir` whose copy of `release`'s image pack was
    /// altered after signing (every byte inverted), as a compromised mirror or a bad
    /// disk would serve it. The metadata is the genuine, signed one, so only the
    /// installer's check of each chunk against its signed hash can catch it. The mirror
    /// fails on the first bad chunk, without the retries a flaky network deserves.
    pub fn tampered_mirror(&self, dir: &Path, release: Release) -> Result<Self, ReleasesError> {
        let mirror = dir.join("tampered-mirror");
        copy_tree(&self.repo, &mirror)?;
        let release_dir = mirror.join("targets").join(BOARD).join(release.version());
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| ReleasesError::Io { path, source }
        };
        for entry in std::fs::read_dir(&release_dir).map_err(io(&release_dir))? {
            let path = entry.map_err(io(&release_dir))?.path();
            if path.to_string_lossy().ends_with(".image.pack") {
                let mut bytes = std::fs::read(&path).map_err(io(&path))?;
                bytes.iter_mut().for_each(|b| *b = !*b);
                std::fs::write(&path, bytes).map_err(io(&path))?;
            }
        }
        Ok(SignedReleases {
            repo: mirror,
            trusted_root: self.trusted_root.clone(),
            retry: RetryPolicy {
                attempts: 1,
                ..RetryPolicy::default()
            },
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
                slot_name: Some(slot.to_string()),
                seed: Some(seed.to_owned()),
                booted: Some(seed.to_owned()),
                downgrade: Downgrade::Refuse,
                retry: self.retry,
                retry_log: RetryLog::default(),
                min_progress: Default::default(),
                clock: SystemTime::now(),
            };
            // The board has already made the slot unbootable (it marks it bad before it
            // calls us), so the installer's own hook has nothing left to change.
            let installed = install(&options, &mut NoBootState, &NoProgress);
            report = Some(installed.map_err(|e| update_err(Box::new(e)))?);
            Ok(())
        })?;
        report.ok_or_else(|| update_err("the installer reported nothing".into()))
    }
}

/// Copies the directory tree `from` to `to` (regular files and directories only).
fn copy_tree(from: &Path, to: &Path) -> Result<(), ReleasesError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| ReleasesError::Io { path, source }
    };
    std::fs::create_dir_all(to).map_err(io(to))?;
    for entry in std::fs::read_dir(from).map_err(io(from))? {
        let entry = entry.map_err(io(from))?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        if entry.file_type().map_err(io(&src))?.is_dir() {
            copy_tree(&src, &dst)?;
        } else {
            std::fs::copy(&src, &dst).map_err(io(&src))?;
        }
    }
    Ok(())
}
