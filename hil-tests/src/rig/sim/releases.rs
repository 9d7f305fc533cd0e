//! The simulated board's releases: the demo's image files (`crate::images`), each cut
//! from the one before, signed into a TUF repository with the release tooling's own
//! code, in the directory the harness's repository server serves.
//!
//! What each property is on this board (its image's first line, which the simulated
//! board reads at boot and its health probe reads while running):
//! - good: `SKERRY-IMAGE healthy`;
//! - failing health check: `SKERRY-IMAGE broken` (boots, the critical check fails);
//! - fault `panic-initramfs`: `SKERRY-IMAGE fault panic-initramfs`: the boot dies
//!   before userspace and the board resets (the analogue of a kernel panic with
//!   `panic=10`);
//! - fault `hang-initramfs`: `SKERRY-IMAGE fault hang-initramfs`: the boot arms the
//!   watchdog (as the initramfs does first thing) and hangs;
//! - bad signature: published, then the timestamp metadata's signature is altered, so
//!   a device's check of it against its trusted root fails.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{bail, Context as _};
use skerry_chunks::ChunkParams;
use skerry_release::{AddImage, Expiries, KeySet, Repository};

use crate::board::HEALTHY_IMAGE;
use crate::images::{self, BROKEN_IMAGE};
use crate::rig::{PublishedRelease, ReleaseFactory, ReleaseProperty, ReleaseRequest, Unsupported};
use crate::updates::BOARD;

/// The fault words this board's releases can carry.
pub const FAULTS: &[&str] = &["panic-initramfs", "hang-initramfs"];

/// The first-line marker of an image with a fault hook.
pub const FAULT_MARKER: &str = "SKERRY-IMAGE fault ";

/// The releases of one simulated board.
#[derive(Debug)]
pub struct SimReleases {
    dir: PathBuf,
    keys: KeySet,
    repo: Repository,
    /// The newest image, the next one is cut from it.
    previous: Vec<u8>,
    seed: u64,
    trusted_root: PathBuf,
}

impl SimReleases {
    /// Keys and an empty signed repository under `dir` (`repo/` is what is served);
    /// `factory` is the image the board shipped with.
    pub fn create(dir: &Path, factory: &[u8]) -> anyhow::Result<Self> {
        let keys = KeySet::generate(&dir.join("keys"), 1)?;
        let repo = Repository::new(&dir.join("repo"));
        skerry_release::init(&keys, &repo, 1, &Expiries::default(), SystemTime::now())?;
        let root = repo.metadata_dir().join("1.root.json");
        let trusted_root = dir.join("trusted-root.json");
        std::fs::copy(&root, &trusted_root)
            .with_context(|| format!("copying {} to {}", root.display(), trusted_root.display()))?;
        Ok(SimReleases {
            dir: dir.to_owned(),
            keys,
            repo,
            previous: factory.to_vec(),
            seed: 0x5100,
            trusted_root,
        })
    }

    /// The directory the repository server serves.
    pub fn repo_dir(&self) -> &Path {
        &self.repo.dir
    }

    /// The root metadata file the device pins.
    pub fn trusted_root(&self) -> &Path {
        &self.trusted_root
    }

    fn image(&mut self, release: &ReleaseRequest) -> anyhow::Result<Vec<u8>> {
        self.seed += 0x100;
        let version = release.version.to_string();
        let healthy = matches!(
            release.property,
            ReleaseProperty::Good | ReleaseProperty::BadSignature
        );
        let mut image = images::release(&self.previous, &version, healthy, self.seed);
        let marker: Vec<u8> = match &release.property {
            ReleaseProperty::Good | ReleaseProperty::BadSignature => HEALTHY_IMAGE.to_vec(),
            ReleaseProperty::FailingHealthCheck => BROKEN_IMAGE.to_vec(),
            ReleaseProperty::Fault(word) if FAULTS.contains(&word.as_str()) => {
                format!("{FAULT_MARKER}{word}\n").into_bytes()
            }
            ReleaseProperty::Fault(word) => {
                return Err(Unsupported {
                    board: "sim".into(),
                    what: format!(
                        "make a release with fault {word:?} (it makes {})",
                        FAULTS.join(", ")
                    ),
                }
                .into())
            }
        };
        let header = [marker.as_slice(), b"version ", version.as_bytes(), b"\n"].concat();
        if header.len() > 64 {
            bail!("the image header for {version} is longer than 64 bytes");
        }
        image[..64].fill(b' ');
        image[..header.len()].copy_from_slice(&header);
        Ok(image)
    }
}

impl ReleaseFactory for SimReleases {
    fn publish(&mut self, release: &ReleaseRequest) -> anyhow::Result<PublishedRelease> {
        let image = self.image(release)?;
        let version = release.version.to_string();
        let path = self.dir.join(format!("image-{version}.img"));
        std::fs::write(&path, &image).with_context(|| format!("writing {}", path.display()))?;
        let add = AddImage {
            board: BOARD,
            version: &version,
            channel: "stable",
            image: &path,
            params: ChunkParams::DEFAULT,
            level: 3,
        };
        let added = skerry_release::add_image(
            &self.keys,
            &self.repo,
            &add,
            &Expiries::default(),
            SystemTime::now(),
        )
        .with_context(|| format!("publishing {version}"))?;
        if release.property == ReleaseProperty::BadSignature {
            spoil_signature(&self.repo.metadata_dir().join("timestamp.json"))?;
        } else {
            // A bad release is never the base of the next one: devices never hold it.
            self.previous = image;
        }
        Ok(PublishedRelease {
            version: release.version.clone(),
            property: release.property.clone(),
            image: path,
            pack_bytes: added.pack_len,
        })
    }
}

/// Alters one hex digit of the first signature of a metadata file (the signed part
/// stays as it was).
fn spoil_signature(path: &Path) -> anyhow::Result<()> {
    let text = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let mut value: serde_json::Value =
        serde_json::from_slice(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    let sig = value
        .pointer_mut("/signatures/0/sig")
        .and_then(|v| v.as_str().map(str::to_owned))
        .with_context(|| format!("{} has no signature to spoil", path.display()))?;
    let mut chars: Vec<char> = sig.chars().collect();
    let Some(first) = chars.first_mut() else {
        bail!("{} has an empty signature", path.display());
    };
    *first = if *first == '0' { '1' } else { '0' };
    value["signatures"][0]["sig"] = serde_json::Value::String(chars.into_iter().collect());
    std::fs::write(path, serde_json::to_vec(&value)?)
        .with_context(|| format!("writing {}", path.display()))
}
