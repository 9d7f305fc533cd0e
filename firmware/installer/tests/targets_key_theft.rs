//! The targets key alone is not enough to install an image: the snapshot pins every
//! targets file by length and sha256, so an attacker who stole the targets key and can
//! write to the mirror cannot re-sign `N.targets.json` under the same version.

mod common;

use std::path::Path;
use std::time::SystemTime;

use common::{image, TestRepo};
use skerry_installer::install::NoProgress;
use skerry_installer::{install, InstallError, NoBootState};
use skerry_release::{AddImage, Expiries, Repository};
use skerry_tuf::{MetaFile, Signed, Snapshot, Targets, Timestamp, TufError};

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        let dest = to.join(p.file_name().unwrap());
        if p.is_dir() {
            copy_dir(&p, &dest);
        } else {
            std::fs::copy(&p, &dest).unwrap();
        }
    }
}

fn read<T: serde::de::DeserializeOwned>(path: &Path) -> T {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// The version of `targets.json` the repository's current snapshot lists.
fn current_targets_version(repo: &Repository) -> u64 {
    let ts: Signed<Timestamp> = read(&repo.metadata_dir().join("timestamp.json"));
    let snap_v = ts.signed.meta["snapshot.json"].version;
    let snap: Signed<Snapshot> = read(&repo.metadata_dir().join(format!("{snap_v}.snapshot.json")));
    snap.signed.meta["targets.json"].version
}

/// Plays the attacker: builds an evil release of `rpi4` in a scratch copy of the mirror,
/// then, with the targets key alone, re-signs the mirror's current `N.targets.json`
/// (same version N) to list only it and copies its index and pack onto the mirror.
/// With `same_length`, the forged file is padded with JSON whitespace to exactly the
/// length the snapshot pins, so only the sha256 can tell it apart.
fn swap_targets_with_stolen_key(victim: &TestRepo, evil_image: &[u8], same_length: bool) {
    let scratch = Repository::new(&victim.path().join("attacker-scratch"));
    copy_dir(&victim.repo.dir, &scratch.dir);
    let evil = victim.path().join("evil.img");
    std::fs::write(&evil, evil_image).unwrap();
    let add = AddImage {
        board: "rpi4",
        version: "6.6.6",
        channel: "stable",
        image: &evil,
        params: skerry_chunks::ChunkParams::DEFAULT,
        level: 3,
    };
    // The scratch copy's snapshot and timestamp are thrown away: only what the targets
    // key signs, and the target files, reach the mirror.
    let now = SystemTime::now();
    let added =
        skerry_release::add_image(&victim.keys, &scratch, &add, &Expiries::default(), now).unwrap();
    let evil_targets: Signed<Targets> = read(
        &scratch
            .metadata_dir()
            .join(format!("{}.targets.json", added.targets_version)),
    );
    copy_dir(
        &scratch.targets_dir().join("rpi4/6.6.6"),
        &victim.repo.targets_dir().join("rpi4/6.6.6"),
    );

    let n = current_targets_version(&victim.repo);
    let path = victim.repo.metadata_dir().join(format!("{n}.targets.json"));
    let pinned_len = std::fs::metadata(&path).unwrap().len() as usize;
    let mut forged = evil_targets.signed;
    forged.version = n;
    forged
        .targets
        .retain(|name, _| name.starts_with("rpi4/6.6.6/"));
    let mut bytes = Signed::sign(forged, &[&victim.keys.targets])
        .unwrap()
        .to_bytes()
        .unwrap();
    if same_length {
        assert!(
            bytes.len() <= pinned_len,
            "forgery longer than the original"
        );
        bytes.resize(pinned_len, b' ');
    }
    std::fs::write(&path, bytes).unwrap();
}

fn attack(same_length: bool) {
    let repo = TestRepo::new();
    // A longer version than the attacker's leaves room to pad a forgery to its length.
    repo.add("rpi4", "100.0.0", &image(300_000, 3));
    let evil_image = image(300_000, 666);
    swap_targets_with_stolen_key(&repo, &evil_image, same_length);

    let slot = repo.path().join("slot");
    let result = install(
        &repo.options(repo.file_transport(), "rpi4", &slot),
        &mut NoBootState,
        &NoProgress,
    );
    let written = std::fs::read(&slot).unwrap_or_default();
    assert!(
        !written.starts_with(&evil_image[..4096]),
        "the device wrote the attacker's image: {result:?}"
    );
    match result {
        // Same length: only the pinned sha256 tells the forgery apart.
        Err(InstallError::Metadata {
            source: TufError::HashMismatch { what },
            ..
        }) if same_length => assert!(what.ends_with(".targets.json"), "{what}"),
        // Any other length: the download stops at the pinned length, or is refused by it.
        Err(InstallError::Metadata {
            source: TufError::LongerThanSigned { what, .. },
            ..
        }) if !same_length => assert!(what.ends_with(".targets.json"), "{what}"),
        Err(InstallError::Metadata {
            source: TufError::LengthMismatch { what, .. },
            ..
        }) if !same_length => assert!(what.ends_with(".targets.json"), "{what}"),
        other => panic!("expected the re-signed targets to be refused, got {other:?}"),
    }
}

#[test]
fn targets_resigned_under_the_same_version_with_a_stolen_targets_key_are_refused() {
    attack(false);
}

#[test]
fn a_same_length_forgery_of_the_targets_is_refused_by_its_pinned_sha256() {
    attack(true);
}

#[test]
fn a_snapshot_listing_targets_by_version_alone_is_refused() {
    let repo = TestRepo::new();
    repo.add("rpi4", "1.0.0", &image(100_000, 4));
    // Re-sign the current snapshot and timestamp (with their own keys) as an old
    // publisher would have: targets listed by version only.
    let md = repo.repo.metadata_dir();
    let ts: Signed<Timestamp> = read(&md.join("timestamp.json"));
    let snap_v = ts.signed.meta["snapshot.json"].version;
    let snap_path = md.join(format!("{snap_v}.snapshot.json"));
    let mut snap: Signed<Snapshot> = read(&snap_path);
    let entry = snap.signed.meta.get_mut("targets.json").unwrap();
    *entry = MetaFile {
        version: entry.version,
        length: None,
        hashes: None,
    };
    let snap_bytes = Signed::sign(snap.signed, &[&repo.keys.snapshot])
        .unwrap()
        .to_bytes()
        .unwrap();
    std::fs::write(&snap_path, &snap_bytes).unwrap();
    let mut ts = ts.signed;
    let listed = ts.meta.get_mut("snapshot.json").unwrap();
    listed.length = Some(snap_bytes.len() as u64);
    listed.hashes = Some(
        [(
            "sha256".to_string(),
            hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&snap_bytes)),
        )]
        .into(),
    );
    let ts_bytes = Signed::sign(ts, &[&repo.keys.timestamp])
        .unwrap()
        .to_bytes()
        .unwrap();
    std::fs::write(md.join("timestamp.json"), ts_bytes).unwrap();

    let slot = repo.path().join("slot");
    match install(
        &repo.options(repo.file_transport(), "rpi4", &slot),
        &mut NoBootState,
        &NoProgress,
    ) {
        Err(InstallError::Metadata {
            source: TufError::Unpinned { role, file },
            ..
        }) => assert_eq!((role.as_str(), file.as_str()), ("snapshot", "targets.json")),
        other => panic!("expected an unpinned targets listing to be refused, got {other:?}"),
    }
}
