//! The QEMU board's releases: slot images built by `skerryctl image build` (the same
//! builder, factory config and extension as the disk the board boots, so the device's
//! update source and trusted root carry over) and signed into the served repository by
//! `skerry_release::add_image`, the code `skerryctl release add` runs.
//!
//! - [`ReleaseProperty::Good`]: a plain build.
//! - [`ReleaseProperty::Fault`]: `--fault WORD`, with `skerryd-fault-hooks`.
//! - [`ReleaseProperty::FailingHealthCheck`]: the slot lacks the application's health
//!   program ([`APP_HEALTH_PROGRAM`]), so the critical exec check every release's config
//!   has fails on it. (Not a different factory config: a device takes the factory config
//!   only while its config store is empty, on its first boot; an upgraded slot runs
//!   with the config the device already has, so a check added by the new release's
//!   factory config never runs.)
//! - [`ReleaseProperty::BadSignature`]: published genuinely into a scratch copy of the
//!   repository, then every signature of its new metadata altered and the result laid
//!   over the served repository; the genuine `timestamp.json` is put back before the next
//!   publish, so later releases are signed over the genuine chain.
//!
//! [`Site::provision`] makes what every board of a test run shares: keys and the
//! repository's first release, the device's PKI, the extension holding the pinned root,
//! the first disk; [`QemuReleases::new`] gives one board its own copy of the repository.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use anyhow::{bail, Context as _};
use skerry_chunks::ChunkParams;
use skerry_release::{AddImage, Expiries, KeySet, Repository};

use super::artifacts::{BuiltImage, ImageBuild, StaticPrograms};
use super::{BOARD_DEFINITION, FAULTS, GUEST_API_PORT, GUEST_REPOSITORY_URL};
use crate::daemon::pki::Pki;
use crate::rig::{PublishedRelease, ReleaseFactory, ReleaseProperty, ReleaseRequest, Unsupported};

/// Where the pinned root of the release repository is in the slot.
/// (Not under `/etc/skerry`: the image owns that directory and extensions may not add to
/// it.)
pub const TRUSTED_ROOT_IN_SLOT: &str = "/etc/skerry-trust/update-root.json";
/// The guest's address on QEMU's user network (slirp's own choice for its first guest),
/// set statically so the API is reachable without waiting for DHCP.
pub const GUEST_ADDRESS: &str = "10.0.2.15/24";
/// Slirp's gateway (with `restrict=on` it forwards only the configured forwards).
pub const GUEST_GATEWAY: &str = "10.0.2.2";
/// How long a new slot's critical checks must hold before it is committed.
pub const PROBATION_SECS: u64 = 20;
/// The application's health program: in every release but a failing one, a symlink to
/// skerryd (`--version` exits 0); the critical exec check runs it.
pub const APP_HEALTH_PROGRAM: &str = "/usr/lib/skerry-app/healthy";

/// What every board of one site shares: the signing keys, the repository as the first
/// release left it, the device PKI, the extension holding the pinned root, the first
/// disk, and the slot images built so far (a build takes about 30 s; the same version
/// and property give the same bytes, so scenarios share them).
#[derive(Debug)]
pub struct Site {
    dir: PathBuf,
    programs: StaticPrograms,
    keys_dir: PathBuf,
    pristine_repo: PathBuf,
    pki_dir: PathBuf,
    pki: Pki,
    extension: PathBuf,
    /// The extension of a release whose critical check fails: the pinned root, no
    /// [`APP_HEALTH_PROGRAM`].
    failing_extension: PathBuf,
    first_version: semver::Version,
    first_disk: BuiltImage,
    built: Mutex<BTreeMap<String, BuiltImage>>,
    /// The update repository's URL as the device sees it (its factory `UpdateConfig`).
    repository_url: String,
}

impl Site {
    /// Makes keys, a repository, the device PKI, the extension with the pinned root and
    /// the factory config under `dir`, builds the disk of `version` and publishes it as
    /// the repository's first release.
    pub fn provision(
        dir: &Path,
        programs: &StaticPrograms,
        version: &semver::Version,
    ) -> anyhow::Result<Site> {
        Site::provision_for(dir, programs, version, GUEST_REPOSITORY_URL)
    }

    /// As [`Site::provision`], with the devices' update repository at `repository_url`
    /// (as the guest sees it) instead of the harness's own at [`GUEST_REPOSITORY_URL`]:
    /// a fleet server's `/repository`.
    pub fn provision_for(
        dir: &Path,
        programs: &StaticPrograms,
        version: &semver::Version,
        repository_url: &str,
    ) -> anyhow::Result<Site> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let keys_dir = dir.join("keys");
        let keys = KeySet::generate(&keys_dir, 1).context("generating release keys")?;
        let repo = Repository::new(&dir.join("repo"));
        skerry_release::init(&keys, &repo, 1, &Expiries::default(), SystemTime::now())
            .context("initializing the release repository")?;
        let pki_dir = dir.join("pki");
        let pki = Pki::create(&pki_dir)?;
        pki.write_clients(&dir.join("clients"))?;
        let extension = dir.join("extension");
        let root_in_ext = extension.join(TRUSTED_ROOT_IN_SLOT.trim_start_matches('/'));
        if let Some(parent) = root_in_ext.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        let root = repo.metadata_dir().join("1.root.json");
        std::fs::copy(&root, &root_in_ext)
            .with_context(|| format!("copying {} into the extension", root.display()))?;
        let failing_extension = dir.join("extension-failing");
        let failing_root = failing_extension.join(TRUSTED_ROOT_IN_SLOT.trim_start_matches('/'));
        if let Some(parent) = failing_root.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::copy(&root, &failing_root)
            .with_context(|| format!("copying {} into the extension", root.display()))?;
        let health = extension.join(APP_HEALTH_PROGRAM.trim_start_matches('/'));
        if let Some(parent) = health.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::os::unix::fs::symlink("/sbin/skerryd", &health)
            .with_context(|| format!("linking {}", health.display()))?;
        let mut site = Site {
            dir: dir.to_owned(),
            programs: programs.clone(),
            keys_dir,
            pristine_repo: repo.dir.clone(),
            pki_dir,
            pki,
            extension,
            failing_extension,
            first_version: version.clone(),
            first_disk: BuiltImage {
                disk: PathBuf::new(),
                slot: PathBuf::new(),
            },
            built: Mutex::new(BTreeMap::new()),
            repository_url: repository_url.to_owned(),
        };
        site.first_disk = site.build(version, &ReleaseProperty::Good, true)?;
        sign_into(&keys, &repo, version, &site.first_disk.slot)?;
        Ok(site)
    }

    /// The client identities the device accepts.
    pub fn pki(&self) -> &Pki {
        &self.pki
    }

    /// The first disk (slot A holds the first version).
    pub fn first_disk(&self) -> &BuiltImage {
        &self.first_disk
    }

    pub fn first_version(&self) -> &semver::Version {
        &self.first_version
    }

    /// Builds `version` with `property`'s build-time part (with the device PKI on the ESP
    /// when `first`, the device's first disk), or returns the same build made earlier.
    fn build(
        &self,
        version: &semver::Version,
        property: &ReleaseProperty,
        first: bool,
    ) -> anyhow::Result<BuiltImage> {
        let fault = match property {
            ReleaseProperty::Fault(word) if !FAULTS.contains(&word.as_str()) => {
                return Err(Unsupported {
                    board: super::BOARD_NAME.into(),
                    what: format!("build a release with the fault {word:?} (known: {FAULTS:?})"),
                }
                .into());
            }
            ReleaseProperty::Fault(word) => Some(word.clone()),
            _ => None,
        };
        // A bad signature is a publishing property: the image is the good one.
        let built_as = match property {
            ReleaseProperty::BadSignature => ReleaseProperty::Good,
            other => other.clone(),
        };
        let name = format!("v{version}-{}", built_as.to_string().replace(' ', "-"));
        let mut cache = self.built.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(built) = cache.get(&name) {
            return Ok(built.clone());
        }
        let config = self.dir.join(format!("{name}.config.yaml"));
        std::fs::write(&config, factory_config(&built_as, &self.repository_url))
            .with_context(|| format!("writing {}", config.display()))?;
        let mut build = ImageBuild::new(version.clone(), &self.dir.join(format!("{name}.img")));
        build.config = Some(config);
        build.extensions = vec![match built_as {
            ReleaseProperty::FailingHealthCheck => self.failing_extension.clone(),
            _ => self.extension.clone(),
        }];
        if first {
            build.pki = Some(self.pki_dir.clone());
            // The first slot's skerryd has the fault hooks (no fault word: inert until
            // the on-demand trigger is used), so a scenario can hang it while it runs.
            build.fault_hooks = true;
        }
        build.fault = fault;
        let built = build.run(&self.programs)?;
        cache.insert(name, built.clone());
        Ok(built)
    }
}

/// Signs `slot` as release `version` into `repo`; returns the pack's size.
fn sign_into(
    keys: &KeySet,
    repo: &Repository,
    version: &semver::Version,
    slot: &Path,
) -> anyhow::Result<u64> {
    let version_text = version.to_string();
    let add = AddImage {
        board: BOARD_DEFINITION,
        version: &version_text,
        channel: "stable",
        image: slot,
        params: ChunkParams::DEFAULT,
        level: 3,
    };
    let added =
        skerry_release::add_image(keys, repo, &add, &Expiries::default(), SystemTime::now())
            .with_context(|| format!("publishing {version} into {}", repo.dir.display()))?;
    Ok(added.pack_len)
}

/// The releases of one QEMU board: its own copy of the site's repository (so each board
/// starts from the first release alone), published into by the site's keys.
#[derive(Debug)]
pub struct QemuReleases {
    site: Arc<Site>,
    /// Holds the repository copy.
    dir: tempfile::TempDir,
    keys: KeySet,
    repo: Repository,
    published: BTreeSet<semver::Version>,
    /// The genuine `timestamp.json` and the files a bad-signature publish laid over the
    /// served repository, to undo before the next publish.
    overlay: Option<(Vec<u8>, Vec<PathBuf>)>,
}

impl QemuReleases {
    /// A fresh copy of `site`'s repository, holding only the first release.
    pub fn new(site: &Arc<Site>) -> anyhow::Result<QemuReleases> {
        let dir = tempfile::Builder::new()
            .prefix("skerry-qemu-repo")
            .tempdir_in(&site.dir)
            .context("creating a board's repository")?;
        let repo = Repository::new(&dir.path().join("repo"));
        copy_tree(&site.pristine_repo, &repo.dir)?;
        let keys = KeySet::load(&site.keys_dir).context("loading the release keys")?;
        let mut published = BTreeSet::new();
        published.insert(site.first_version.clone());
        Ok(QemuReleases {
            site: Arc::clone(site),
            dir,
            keys,
            repo,
            published,
            overlay: None,
        })
    }

    /// The fault words this factory can build.
    pub fn faults(&self) -> &'static [&'static str] {
        FAULTS
    }

    /// Whether it can build a release whose critical health check fails.
    pub fn can_fail_health_check(&self) -> bool {
        true
    }

    /// The repository's directory (serve it).
    pub fn repository(&self) -> &Path {
        &self.repo.dir
    }

    fn sign(&mut self, version: &semver::Version, slot: &Path) -> anyhow::Result<u64> {
        self.undo_overlay()?;
        let bytes = sign_into(&self.keys, &self.repo, version, slot)?;
        self.published.insert(version.clone());
        Ok(bytes)
    }

    /// Publishes `version` with every new signature altered, laid over the served
    /// repository.
    fn sign_badly(&mut self, version: &semver::Version, slot: &Path) -> anyhow::Result<u64> {
        self.undo_overlay()?;
        let scratch =
            tempfile::tempdir_in(self.dir.path()).context("creating a scratch repository")?;
        let copy = Repository::new(&scratch.path().join("repo"));
        copy_tree(&self.repo.dir, &copy.dir)?;
        let bytes = sign_into(&self.keys, &copy, version, slot)?;
        let timestamp = self.repo.metadata_dir().join("timestamp.json");
        let genuine = std::fs::read(&timestamp)
            .with_context(|| format!("reading {}", timestamp.display()))?;
        let mut laid = Vec::new();
        for file in list_files(&copy.dir)? {
            let rel = file.strip_prefix(&copy.dir).unwrap_or(&file).to_owned();
            let target = self.repo.dir.join(&rel);
            let is_timestamp = rel == Path::new("metadata/timestamp.json");
            if target.exists() && !is_timestamp {
                continue;
            }
            let mut content =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            if rel.starts_with("metadata") {
                content = spoil_signatures(&content)
                    .with_context(|| format!("altering the signatures of {}", rel.display()))?;
            }
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("creating {}", parent.display()))?;
            }
            std::fs::write(&target, content)
                .with_context(|| format!("writing {}", target.display()))?;
            if !is_timestamp {
                laid.push(target);
            }
        }
        self.overlay = Some((genuine, laid));
        Ok(bytes)
    }

    /// Puts the genuine chain back after a bad-signature publish.
    fn undo_overlay(&mut self) -> anyhow::Result<()> {
        let Some((timestamp, laid)) = self.overlay.take() else {
            return Ok(());
        };
        let path = self.repo.metadata_dir().join("timestamp.json");
        std::fs::write(&path, timestamp)
            .with_context(|| format!("restoring {}", path.display()))?;
        for file in laid {
            std::fs::remove_file(&file).with_context(|| format!("removing {}", file.display()))?;
        }
        Ok(())
    }
}

impl ReleaseFactory for QemuReleases {
    fn publish(&mut self, release: &ReleaseRequest) -> anyhow::Result<PublishedRelease> {
        if self.published.contains(&release.version) {
            bail!("release {} is already published", release.version);
        }
        let built = self
            .site
            .build(&release.version, &release.property, false)?;
        let pack_bytes = match release.property {
            ReleaseProperty::BadSignature => self.sign_badly(&release.version, &built.slot)?,
            _ => self.sign(&release.version, &built.slot)?,
        };
        Ok(PublishedRelease {
            version: release.version.clone(),
            property: release.property.clone(),
            image: built.slot,
            pack_bytes,
        })
    }
}

/// The factory machine config of every release: the guest's network (eth0, the
/// virtio-net card), where updates come from, and a service with two critical checks:
/// the device's own API port, and [`APP_HEALTH_PROGRAM`] (which a
/// [`ReleaseProperty::FailingHealthCheck`] slot lacks). The same for every property: the
/// device keeps the config of its first boot (see the module docs).
pub fn factory_config(_property: &ReleaseProperty, repository_url: &str) -> String {
    format!(
        "apiVersion: skerry.dev/v1alpha1
kind: MachineConfig
hostname: skerry-qemu
---
apiVersion: skerry.dev/v1alpha1
kind: NetworkConfig
links:
  - name: eth0
    addresses: [{GUEST_ADDRESS}]
routes:
  - destination: 0.0.0.0/0
    gateway: {GUEST_GATEWAY}
---
apiVersion: skerry.dev/v1alpha1
kind: UpdateConfig
repository: {repository_url}
trustedRoot: {TRUSTED_ROOT_IN_SLOT}
board: {BOARD_DEFINITION}
channel: stable
probation: {PROBATION_SECS}s
---
apiVersion: skerry.dev/v1alpha1
kind: ServiceConfig
name: app
command: [/sbin/skerryd, --version]
restart:
  policy: always
  initialBackoff: 5s
  maxBackoff: 5s
healthChecks:
  - name: api-port
    probe:
      tcp:
        address: \"127.0.0.1:{GUEST_API_PORT}\"
    interval: 3s
    timeout: 2500ms
    failureThreshold: 4
    critical: true
  - name: app-healthy
    probe:
      exec:
        command: [{APP_HEALTH_PROGRAM}, --version]
    interval: 3s
    timeout: 2500ms
    failureThreshold: 3
    critical: true
"
    )
}

/// `bytes` (signed TUF metadata) with the last hex digit of every signature changed.
fn spoil_signatures(bytes: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut value: serde_json::Value =
        serde_json::from_slice(bytes).context("the metadata is not JSON")?;
    let Some(signatures) = value.get_mut("signatures").and_then(|s| s.as_array_mut()) else {
        bail!("the metadata has no signatures array");
    };
    for signature in signatures {
        let Some(sig) = signature.get("sig").and_then(|s| s.as_str()) else {
            bail!("a signature has no sig");
        };
        let mut spoiled = sig.to_owned();
        let last = spoiled.pop().unwrap_or('0');
        spoiled.push(if last == '0' { '1' } else { '0' });
        signature["sig"] = serde_json::Value::String(spoiled);
    }
    Ok(serde_json::to_vec(&value)?)
}

fn list_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).with_context(|| format!("listing {}", d.display()))? {
            let entry = entry?;
            if entry.file_type()?.is_dir() {
                stack.push(entry.path());
            } else {
                out.push(entry.path());
            }
        }
    }
    out.sort();
    Ok(out)
}

pub(crate) fn copy_tree(from: &Path, to: &Path) -> anyhow::Result<()> {
    for file in list_files(from)? {
        let rel = file.strip_prefix(from).unwrap_or(&file);
        let target = to.join(rel);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::copy(&file, &target).with_context(|| format!("copying {}", file.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spoiled_signatures_differ_and_the_signed_part_does_not() {
        let original = br#"{"signed":{"version":3},"signatures":[{"keyid":"k","sig":"abc0"},{"keyid":"l","sig":"ff"}]}"#;
        let spoiled: serde_json::Value =
            serde_json::from_slice(&spoil_signatures(original).unwrap()).unwrap();
        assert_eq!(spoiled["signatures"][0]["sig"], "abc1");
        assert_eq!(spoiled["signatures"][1]["sig"], "f0");
        assert_eq!(spoiled["signed"]["version"], 3);
        assert!(spoil_signatures(b"{\"signed\":{}}").is_err());
    }

    #[test]
    fn every_release_checks_the_app_health_program_and_the_config_decodes() {
        let good = factory_config(&ReleaseProperty::Good, GUEST_REPOSITORY_URL);
        assert_eq!(
            good,
            factory_config(&ReleaseProperty::FailingHealthCheck, GUEST_REPOSITORY_URL)
        );
        assert!(good.contains("command: [/usr/lib/skerry-app/healthy, --version]"));
        assert!(
            good.contains("repository: http://10.0.2.100:8080"),
            "{good}"
        );
        let config = skerry_config::decode(&good).unwrap_or_else(|e| panic!("{e}\n{good}"));
        skerry_config::validate(&config, None).unwrap_or_else(|e| panic!("{e}\n{good}"));
    }
}
