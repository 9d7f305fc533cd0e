//! Offline bundles (`bundle:FILE`): cut from a repository, installed through the same TUF
//! chain, time floor and rollback rules as a network install. A delta bundle installs on
//! a seed holding its base (patches included); a full one without a seed; a bundle outlives the online
//! timestamp but not its own; an older bundle than what the device saw, a tampered
//! object, a file cut short and a device on another base are refused with clear errors,
//! and a refused cut leaves no file.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use common::{edit, image, TestRepo};
use skerry_bundle::{BundleError, BundleFile};
use skerry_installer::install::NoProgress;
use skerry_installer::transport::BundleTransport;
use skerry_installer::{
    install, open_url, FetchError, InstallError, NoBootState, SlotActivation, Transport,
};
use skerry_release::bundle::{cut_bundle, BundleReport, BundleRequest, CutError};
use skerry_release::{Expiries, KeySet};
use skerry_tuf::TufError;

const DAY: Duration = Duration::from_secs(86_400);

/// A repository with rpi4 1.0.0 and 1.1.0 (a few edits apart).
fn two_releases() -> (TestRepo, Vec<u8>, Vec<u8>) {
    let repo = TestRepo::new();
    let v1 = image(3 << 20, 11);
    let v2 = edit(&v1, 3, 30_000, 12);
    repo.add("rpi4", "1.0.0", &v1);
    repo.add("rpi4", "1.1.0", &v2);
    (repo, v1, v2)
}

fn cut(repo: &TestRepo, version: &str, from: Option<&str>, name: &str) -> (PathBuf, BundleReport) {
    cut_at(repo, version, from, name, SystemTime::now(), 30 * DAY)
}

fn cut_at(
    repo: &TestRepo,
    version: &str,
    from: Option<&str>,
    name: &str,
    now: SystemTime,
    expires: Duration,
) -> (PathBuf, BundleReport) {
    let out = repo.path().join(name);
    let req = BundleRequest {
        board: "rpi4",
        version,
        from,
        expires,
        out: &out,
    };
    let report = cut_bundle(&repo.keys, &repo.repo, &req, now).unwrap();
    (out, report)
}

fn bundle(path: &Path) -> Arc<dyn Transport> {
    Arc::new(BundleTransport::open(path).unwrap())
}

/// A seed slot holding `image`.
fn seed(repo: &TestRepo, image: &[u8]) -> PathBuf {
    let path = repo.path().join("seed.img");
    std::fs::write(&path, image).unwrap();
    path
}

#[test]
fn a_delta_bundle_installs_on_its_base_exactly() {
    let (repo, v1, v2) = two_releases();
    let (file, report) = cut(&repo, "1.1.0", Some("1.0.0"), "delta.skb");
    let (_, full) = cut(&repo, "1.1.0", None, "full.skb");
    assert_eq!(report.from.as_deref(), Some("1.0.0"));
    // Only what changed travels: a fraction of the whole image's chunks.
    assert!(
        report.payload_bytes * 4 < full.payload_bytes,
        "{report:?} vs {full:?}"
    );
    assert!(
        report.bundle_len * 4 < full.bundle_len,
        "{report:?} vs {full:?}"
    );
    assert_eq!(std::fs::metadata(&file).unwrap().len(), report.bundle_len);

    let slot = repo.path().join("b.img");
    let mut opts = repo.options(
        open_url(&format!("bundle:{}", file.display()), DAY).unwrap(),
        "rpi4",
        &slot,
    );
    opts.seed = Some(seed(&repo, &v1));
    let r = install(&opts, &mut NoBootState, &NoProgress).unwrap();
    assert_eq!(r.version, "1.1.0");
    assert_eq!(std::fs::read(&slot).unwrap(), v2);
    assert!(r.chunks_reused > 0 && r.chunks_fetched > 0, "{r:?}");
}

#[test]
fn a_delta_bundle_carries_patches_and_installs_them() {
    let repo = TestRepo::new();
    let v1 = image(3 << 20, 31);
    // Small edits all over the image: chunks change by a few bytes, so patches pay.
    let mut v2 = v1.clone();
    for k in 0..40usize {
        let at = k * (v2.len() / 41) + 777;
        v2[at..at + 4].copy_from_slice(&(k as u32).to_le_bytes());
    }
    repo.add("rpi4", "1.0.0", &v1);
    repo.add_delta("rpi4", "1.1.0", &v2, &["1.0.0"]);
    let (file, report) = cut(&repo, "1.1.0", Some("1.0.0"), "patched.skb");
    assert!(report.chunks_patched > 0, "{report:?}");
    let toc = BundleFile::open(&file).unwrap().toc().clone();
    assert!(toc.files().any(|f| f.name.contains("patch")), "{toc:?}");

    let slot = repo.path().join("b.img");
    let mut opts = repo.options(bundle(&file), "rpi4", &slot);
    opts.seed = Some(seed(&repo, &v1));
    let r = install(&opts, &mut NoBootState, &NoProgress).unwrap();
    assert_eq!(std::fs::read(&slot).unwrap(), v2);
    assert_eq!(r.chunks_patched, report.chunks_patched, "{r:?}");
    assert_eq!(r.patch_fallbacks, 0, "{r:?}");
}

#[test]
fn a_full_bundle_installs_without_a_seed() {
    let (repo, _, v2) = two_releases();
    let (file, report) = cut(&repo, "1.1.0", None, "full.skb");
    assert!(
        report.chunks_full > 0 && report.chunks_patched == 0,
        "{report:?}"
    );
    let slot = repo.path().join("b.img");
    let opts = repo.options(bundle(&file), "rpi4", &slot);
    let r = install(&opts, &mut NoBootState, &NoProgress).unwrap();
    assert_eq!(std::fs::read(&slot).unwrap(), v2);
    assert_eq!(r.chunks_reused, 0);
}

#[test]
fn a_bundle_outlives_the_online_timestamp_but_not_its_own() {
    let (repo, _, v2) = two_releases();
    let (file, _) = cut(&repo, "1.1.0", None, "long.skb");
    let slot = repo.path().join("b.img");
    // Twenty days on: the online timestamp (7 days) has expired, the bundle's has not.
    let later = SystemTime::now() + 20 * DAY;
    let mut online = repo.options(repo.file_transport(), "rpi4", &slot);
    online.clock = later;
    let err = install(&online, &mut NoBootState, &NoProgress).unwrap_err();
    assert!(expired(&err, "timestamp"), "{err:?}");
    let mut offline = repo.options(bundle(&file), "rpi4", &slot);
    offline.clock = later;
    install(&offline, &mut NoBootState, &NoProgress).unwrap();
    assert_eq!(std::fs::read(&slot).unwrap(), v2);

    // A bundle cut 40 days ago for 30 days is refused, as is its timestamp's expiry.
    let (old, _) = cut_at(
        &repo,
        "1.1.0",
        None,
        "old.skb",
        SystemTime::now() - 40 * DAY,
        30 * DAY,
    );
    let mut opts = repo.options(bundle(&old), "rpi4", &repo.path().join("c.img"));
    opts.state_dir = repo.path().join("fresh-state");
    let err = install(&opts, &mut NoBootState, &NoProgress).unwrap_err();
    assert!(expired(&err, "timestamp"), "{err:?}");
}

fn expired(err: &InstallError, role: &str) -> bool {
    matches!(err, InstallError::Metadata { source: TufError::Expired { role: r, .. }, .. } if r == role)
}

#[test]
fn a_bundle_older_than_what_the_device_saw_is_a_rollback() {
    let (repo, _, _) = two_releases();
    let (old, report) = cut(&repo, "1.1.0", None, "old.skb");
    // The repository moves on and the device sees it.
    repo.add("rpi4", "1.2.0", &image(1 << 20, 13));
    let slot = repo.path().join("b.img");
    let opts = repo.options(repo.file_transport(), "rpi4", &slot);
    install(&opts, &mut NoBootState, &NoProgress).unwrap();

    let mut opts = repo.options(bundle(&old), "rpi4", &slot);
    opts.version = Some(semver::Version::new(1, 1, 0));
    let err = install(&opts, &mut NoBootState, &NoProgress).unwrap_err();
    assert!(
        matches!(&err, InstallError::Metadata { source: TufError::Rollback { role, offered, .. }, .. }
            if role == "timestamp" && *offered == report.timestamp_version),
        "{err:?}"
    );
}

#[test]
fn a_bundle_after_a_root_rotation_carries_the_new_root() {
    let (repo, _, v2) = two_releases();
    let new_keys = KeySet::generate(&repo.path().join("keys-2"), 1).unwrap();
    skerry_release::rotate_root(
        &repo.keys,
        &new_keys,
        &repo.repo,
        1,
        &Expiries::default(),
        SystemTime::now(),
    )
    .unwrap();
    let out = repo.path().join("rotated.skb");
    let req = BundleRequest {
        board: "rpi4",
        version: "1.1.0",
        from: None,
        expires: 30 * DAY,
        out: &out,
    };
    // The old timestamp key is no longer the repository's: refused, no file left.
    let err = cut_bundle(&repo.keys, &repo.repo, &req, SystemTime::now()).unwrap_err();
    assert!(
        matches!(
            err,
            CutError::Release(skerry_release::ReleaseError::WrongKeys { .. })
        ),
        "{err:?}"
    );
    assert!(!out.exists());
    cut_bundle(&new_keys, &repo.repo, &req, SystemTime::now()).unwrap();
    // The device trusts root 1 only; the bundle brings root 2.
    let slot = repo.path().join("b.img");
    install(
        &repo.options(bundle(&out), "rpi4", &slot),
        &mut NoBootState,
        &NoProgress,
    )
    .unwrap();
    assert_eq!(std::fs::read(&slot).unwrap(), v2);
}

#[test]
fn a_tampered_chunk_or_metadata_in_a_bundle_is_refused() {
    let (repo, _, _) = two_releases();
    let (file, _) = cut(&repo, "1.1.0", None, "full.skb");
    let toc = BundleFile::open(&file).unwrap().toc().clone();
    let pack = toc
        .files()
        .find(|f| f.name.ends_with(".image.pack"))
        .unwrap();
    let ts = toc.file("metadata/timestamp.json").unwrap();
    let flip = |at: u64, name: &str| {
        let mut bytes = std::fs::read(&file).unwrap();
        bytes[at as usize] ^= 0x20;
        let path = repo.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    };

    let slot = repo.path().join("b.img");
    let bad_chunk = flip(pack.extents[0].bundle_offset + 40, "chunk.skb");
    let err = install(
        &repo.options(bundle(&bad_chunk), "rpi4", &slot),
        &mut NoBootState,
        &NoProgress,
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            InstallError::TamperedChunk { .. } | InstallError::BadChunk { .. }
        ),
        "{err:?}"
    );

    let bad_ts = flip(ts.extents[0].bundle_offset + ts.len / 2, "ts.skb");
    let err = install(
        &repo.options(bundle(&bad_ts), "rpi4", &slot),
        &mut NoBootState,
        &NoProgress,
    )
    .unwrap_err();
    assert!(matches!(err, InstallError::Metadata { .. }), "{err:?}");
}

#[test]
fn a_bundle_cut_short_or_grown_is_refused_before_use() {
    let (repo, _, _) = two_releases();
    let (file, _) = cut(&repo, "1.1.0", Some("1.0.0"), "delta.skb");
    let bytes = std::fs::read(&file).unwrap();
    let toc_end = BundleFile::open(&file).unwrap().toc().header.toc_len as usize + 64;
    for (name, cut_to, what) in [
        ("data.skb", bytes.len() - 1, "data"),
        ("toc.skb", toc_end - 1, "table of contents"),
        ("header.skb", 20, "header"),
    ] {
        let path = repo.path().join(name);
        std::fs::write(&path, &bytes[..cut_to]).unwrap();
        let err = open_url(&format!("bundle:{}", path.display()), DAY).unwrap_err();
        assert!(
            matches!(&err, FetchError::Bundle { source: BundleError::Truncated { part, .. }, .. } if *part == what),
            "{name}: {err:?}"
        );
        assert!(err.to_string().contains(name), "{err}");
    }
    let grown = repo.path().join("grown.skb");
    std::fs::write(&grown, [&bytes[..], b"extra"].concat()).unwrap();
    assert!(matches!(
        BundleTransport::open(&grown).unwrap_err(),
        FetchError::Bundle {
            source: BundleError::TrailingBytes { .. },
            ..
        }
    ));
}

#[test]
fn a_device_on_another_base_is_told_the_base_the_bundle_needs() {
    let repo = TestRepo::new();
    let v0 = image(3 << 20, 20);
    let v1 = edit(&v0, 6, 60_000, 21);
    let v2 = edit(&v1, 3, 30_000, 22);
    repo.add("rpi4", "0.9.0", &v0);
    repo.add("rpi4", "1.0.0", &v1);
    repo.add("rpi4", "1.1.0", &v2);
    let (file, _) = cut(&repo, "1.1.0", Some("1.0.0"), "delta.skb");
    // This device still runs 0.9.0.
    let slot = repo.path().join("b.img");
    let mut opts = repo.options(bundle(&file), "rpi4", &slot);
    opts.seed = Some(seed(&repo, &v0));
    let mut activation = Counted(0);
    let err = install(&opts, &mut activation, &NoProgress).unwrap_err();
    let text = chain(&err);
    assert!(text.contains("devices running rpi4 1.0.0"), "{text}");
    assert!(text.contains("--from"), "{text}");
    assert!(!text.contains("attempts"), "not retried: {text}");
    // Refused before the slot is touched: never marked bad, never opened.
    assert_eq!(activation.0, 0);
    assert!(!slot.exists());
}

/// Counts how often the slot was made unbootable.
struct Counted(u32);

impl SlotActivation for Counted {
    fn deactivate(&mut self) -> Result<(), skerry_installer::guard::ActivationError> {
        self.0 += 1;
        Ok(())
    }
}

#[test]
fn a_refused_cut_leaves_no_file() {
    let (repo, _, _) = two_releases();
    let out = repo.path().join("none.skb");
    for (version, from) in [
        ("2.0.0", None),
        ("1.1.0", Some("1.1.0")),
        ("1.1.0", Some("0.1.0")),
    ] {
        let req = BundleRequest {
            board: "rpi4",
            version,
            from,
            expires: DAY,
            out: &out,
        };
        let err = cut_bundle(&repo.keys, &repo.repo, &req, SystemTime::now()).unwrap_err();
        assert!(
            matches!(
                err,
                CutError::NoRelease { .. } | CutError::BaseNotOlder { .. }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("rpi4"), "{err}");
    }
    let leftovers: Vec<_> = std::fs::read_dir(repo.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".skb"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        text += &format!(": {s}");
        source = s.source();
    }
    text
}
