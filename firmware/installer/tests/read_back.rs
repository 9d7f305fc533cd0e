//! The read-back comes from the medium, not the page cache, and hashes the whole image
//! against the signed whole-image BLAKE3; a release without that hash is refused.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;

use common::{image, TestRepo};
use skerry_installer::install::NoProgress;
use skerry_installer::select::{select, Selector};
use skerry_installer::{install, InstallError, NoBootState};
use skerry_tuf::{Expiry, TargetFile, Targets, SPEC_VERSION};

/// Bytes this process has had read from storage (`/proc/self/io`, all threads).
fn storage_reads() -> u64 {
    let io = std::fs::read_to_string("/proc/self/io").expect("/proc/self/io is readable");
    io.lines()
        .find_map(|l| l.strip_prefix("read_bytes: "))
        .and_then(|v| v.trim().parse().ok())
        .expect("/proc/self/io has read_bytes (task I/O accounting)")
}

#[test]
fn the_slot_is_read_back_from_the_medium() {
    // The slot must sit on a disk-backed filesystem: tmpfs has no medium to read.
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("read-back");
    std::fs::create_dir_all(&dir).unwrap();
    let fs = rustix::fs::statfs(&dir).unwrap();
    assert_ne!(
        fs.f_type as i64,
        0x0102_1994,
        "CARGO_TARGET_TMPDIR {} is on tmpfs; run the tests from a disk-backed target dir",
        dir.display()
    );
    let repo = TestRepo::new();
    let img = image(8 << 20, 41);
    repo.add("rpi4", "1.0.0", &img);
    let slot = dir.join("slot.img");
    let _ = std::fs::remove_file(&slot);
    let opts = repo.options(repo.file_transport(), "rpi4", &slot);
    let before = storage_reads();
    let r = install(&opts, &mut NoBootState, &NoProgress).unwrap();
    let read = storage_reads() - before;
    assert_eq!(r.blake3, blake3::hash(&img).to_hex().to_string());
    // Written moments ago, the whole image would still be in the page cache.
    assert!(
        read >= img.len() as u64,
        "only {read} bytes came from storage for an {} byte image",
        img.len()
    );
}

fn targets_without_image_hash() -> Targets {
    const SHA: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    let custom = serde_json::json!({"skerry": {
        "board": "rpi4", "version": "1.0.0", "channel": "stable",
        "image_length": 10, "image_sha256": SHA,
        "head_length": 176, "head_sha256": SHA, "pack": "rpi4/1.0.0/image.pack",
    }});
    let file = |custom| TargetFile {
        length: 1000,
        hashes: [("sha256".to_string(), SHA.to_string())].into(),
        custom,
    };
    let mut targets = BTreeMap::new();
    targets.insert("rpi4/1.0.0/image.idx".to_string(), file(Some(custom)));
    targets.insert("rpi4/1.0.0/image.pack".to_string(), file(None));
    Targets {
        kind: "targets".into(),
        spec_version: SPEC_VERSION.into(),
        version: 1,
        expires: Expiry::parse("2100-01-01T00:00:00Z").unwrap(),
        targets,
    }
}

#[test]
fn a_release_without_a_whole_image_hash_is_refused() {
    let want = Selector {
        board: "rpi4",
        ..Default::default()
    };
    let err = select(&targets_without_image_hash(), &want).unwrap_err();
    assert!(matches!(err, InstallError::NoImageHash { .. }), "{err}");
}

#[test]
fn the_signed_whole_image_hash_is_what_the_read_back_must_match() {
    use skerry_installer::plan::{fetch_head, make_plan};
    use skerry_installer::seed::SeedIndex;
    use skerry_installer::write::write_slot;
    use skerry_installer::Fetcher;

    let repo = TestRepo::new();
    let img = image(300_000, 42);
    repo.add("rpi4", "1.0.0", &img);
    let current = skerry_release::Repository::current(&repo.repo).unwrap();
    let want = Selector {
        board: "rpi4",
        ..Default::default()
    };
    let selected = select(&current.targets.signed, &want).unwrap();
    let fetcher = Fetcher::new(repo.file_transport(), common::fast_retry());
    let head = fetch_head(&fetcher, &selected).unwrap();
    let plan = make_plan(
        &fetcher,
        &selected,
        head,
        &SeedIndex::none(),
        &SeedIndex::none(),
    )
    .unwrap();
    let slot = repo.path().join("slot.img");
    let mut wrong = selected.image_blake3;
    wrong[0] ^= 1;
    let err = write_slot(
        &plan,
        wrong,
        &fetcher,
        &selected.pack_path,
        None,
        &slot,
        None,
        &NoProgress,
    )
    .unwrap_err();
    assert!(matches!(err, InstallError::ImageMismatch { .. }), "{err}");
}
