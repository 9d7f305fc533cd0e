//! A validly signed but hostile release (the signer's key was stolen, or its tool was
//! buggy) declares sizes the device must not believe: each is refused by our own limit
//! with an error naming it, before anything of that size is fetched or allocated.

mod common;

use common::{image, TestRepo};
use sha2::{Digest, Sha256};
use skerry_chunks::{ChunkParams, IndexError, IndexHead};
use skerry_installer::install::NoProgress;
use skerry_installer::{install, InstallError, NoBootState};
use skerry_tuf::image::{consistent_path, ImageCustom};

/// Lets `edit` change the release's index target (its signed entry and the index file),
/// then re-signs targets, snapshot and timestamp with the repository's own keys, as a
/// publisher with every key would.
fn forge(repo: &TestRepo, edit: impl FnOnce(&mut skerry_tuf::TargetFile, &mut Vec<u8>)) {
    common::resign_targets(repo, |targets| {
        let name = "rpi4/1.0.0/image.idx";
        let entry = targets.targets.get_mut(name).unwrap();
        let old_path = repo
            .repo
            .targets_dir()
            .join(consistent_path(name, &entry.hashes["sha256"]));
        let mut index = std::fs::read(&old_path).unwrap();
        edit(entry, &mut index);
        let sha = entry.hashes["sha256"].clone();
        std::fs::write(
            repo.repo.targets_dir().join(consistent_path(name, &sha)),
            &index,
        )
        .unwrap();
    });
}

/// Replaces the index head with `head` (bodies unchanged) and re-pins it.
fn replace_head(entry: &mut skerry_tuf::TargetFile, index: &mut Vec<u8>, head: &IndexHead) {
    let mut custom: ImageCustom = serde_json::from_value(entry.custom.clone().unwrap()).unwrap();
    let old_len = custom.skerry.head_length as usize;
    let new_head = head.encode();
    let mut bytes = new_head.clone();
    bytes.extend_from_slice(&index[old_len..]);
    *index = bytes;
    custom.skerry.head_length = new_head.len() as u64;
    custom.skerry.head_sha256 = hex::encode(Sha256::digest(&new_head));
    entry.custom = Some(serde_json::to_value(custom).unwrap());
    entry.length = index.len() as u64;
    entry
        .hashes
        .insert("sha256".into(), hex::encode(Sha256::digest(&*index)));
}

fn head_of(entry: &skerry_tuf::TargetFile, index: &[u8]) -> IndexHead {
    let custom: ImageCustom = serde_json::from_value(entry.custom.clone().unwrap()).unwrap();
    IndexHead::decode(&index[..custom.skerry.head_length as usize]).unwrap()
}

fn attempt(repo: &TestRepo) -> Result<(), InstallError> {
    let slot = repo.path().join("slot");
    install(
        &repo.options(repo.file_transport(), "rpi4", &slot),
        &mut NoBootState,
        &NoProgress,
    )
    .map(|_| ())
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
            line.split_whitespace().nth(1)?.parse().ok()
        })
        .unwrap_or(0)
}

fn repo() -> TestRepo {
    let repo = TestRepo::new();
    repo.add("rpi4", "1.0.0", &image(200_000, 9));
    repo
}

#[test]
fn a_signed_head_length_of_2_pow_62_is_refused_without_allocating() {
    let repo = repo();
    forge(&repo, |entry, _| {
        let mut custom: ImageCustom =
            serde_json::from_value(entry.custom.clone().unwrap()).unwrap();
        custom.skerry.head_length = 1 << 62;
        entry.custom = Some(serde_json::to_value(custom).unwrap());
        entry.length = (1 << 62) + 1;
    });
    match attempt(&repo) {
        Err(InstallError::Index {
            source: IndexError::TooLarge { what, value, .. },
            ..
        }) => assert_eq!((what, value), ("head length", 1 << 62)),
        other => panic!("expected the head length to be refused, got {other:?}"),
    }
    eprintln!("peak RSS after the 2^62 head: {} KiB", peak_rss_kib());
}

#[test]
fn a_signed_index_of_16_mib_chunks_is_refused() {
    let repo = repo();
    forge(&repo, |entry, index| {
        let mut head = head_of(entry, index);
        head.params = ChunkParams {
            min: 4 << 20,
            avg: 8 << 20,
            max: 16 << 20,
        };
        replace_head(entry, index, &head);
    });
    match attempt(&repo) {
        Err(InstallError::Index {
            source: IndexError::TooLarge { what, value, .. },
            ..
        }) => assert_eq!((what, value), ("maximum chunk length", 16 << 20)),
        other => panic!("expected 16 MiB chunks to be refused, got {other:?}"),
    }
}

#[test]
fn a_signed_page_of_512_mib_is_refused_before_its_body_is_fetched() {
    let repo = repo();
    forge(&repo, |entry, index| {
        let mut head = head_of(entry, index);
        let last = head.pages.len() - 1;
        head.pages[last].entries = (512 << 20) / 24;
        head.pages[last].body_len = head.pages[last].entries * 24;
        head.chunk_count = head.pages.iter().map(|p| u64::from(p.entries)).sum();
        replace_head(entry, index, &head);
    });
    match attempt(&repo) {
        Err(InstallError::Index {
            source: IndexError::TooLarge { what, .. },
            ..
        }) => assert_eq!(what, "page entry count"),
        other => panic!("expected the 512 MiB page to be refused, got {other:?}"),
    }
    eprintln!("peak RSS after the 512 MiB page: {} KiB", peak_rss_kib());
}
