//! The installer over file://: full and delta installs, what it reports, and the inputs it
//! must refuse (another board, an older version, a slot too small, a full disk).

mod common;

use common::{edit, image, TestRepo};
use skerry_installer::install::NoProgress;
use skerry_installer::NoBootState;
use skerry_installer::{install, InstallError};

#[test]
fn full_then_delta_install_writes_exact_images_and_fetches_little() {
    let repo = TestRepo::new();
    let v1 = image(6 << 20, 1);
    let v2 = edit(&v1, 2, 20_000, 2);
    repo.add("rpi4", "1.0.0", &v1);
    repo.add("rpi4", "1.1.0", &v2);
    let slot_a = repo.path().join("a.img");
    let slot_b = repo.path().join("b.img");

    let mut opts = repo.options(repo.file_transport(), "rpi4", &slot_a);
    opts.version = Some(semver::Version::new(1, 0, 0));
    let full = install(&opts, &mut NoBootState, &NoProgress).unwrap();
    assert_eq!(std::fs::read(&slot_a).unwrap(), v1);
    assert_eq!(full.version, "1.0.0");
    assert_eq!(full.bytes_written, v1.len() as u64);
    assert_eq!(
        full.chunks_reused + full.chunks_fetched,
        full_chunks(&repo, "1.0.0")
    );
    assert!(full.chunks_fetched > 0);

    let mut opts = repo.options(repo.file_transport(), "rpi4", &slot_b);
    opts.seed = Some(slot_a.clone());
    let delta = install(&opts, &mut NoBootState, &NoProgress).unwrap();
    assert_eq!(std::fs::read(&slot_b).unwrap(), v2);
    assert_eq!(delta.version, "1.1.0");
    assert_eq!(delta.blake3, blake3::hash(&v2).to_hex().to_string());
    assert!(delta.chunks_reused > 0 && delta.chunks_fetched > 0);
    assert!(delta.index_pages_from_seed > 0, "{delta:?}");
    // 2 edits of 20 kB: the delta must cost a small fraction of the full download.
    assert!(
        delta.bytes_fetched * 5 < full.bytes_fetched,
        "{delta:?} vs {full:?}"
    );
}

fn full_chunks(repo: &TestRepo, version: &str) -> u64 {
    let path = repo
        .files()
        .into_iter()
        .find(|p| {
            p.to_string_lossy().contains(&format!("/{version}/"))
                && p.to_string_lossy().ends_with(".image.idx")
        })
        .unwrap();
    let bytes = std::fs::read(repo.repo.dir.join(path)).unwrap();
    let head_len = 80 + 96 * u32::from_le_bytes(bytes[60..64].try_into().unwrap()) as usize;
    skerry_chunks::IndexHead::decode(&bytes[..head_len])
        .unwrap()
        .chunk_count
}

#[test]
fn unchanged_image_reuses_everything() {
    let repo = TestRepo::new();
    let v1 = image(1 << 20, 3);
    repo.add("rpi4", "1.0.0", &v1);
    let seed = repo.path().join("seed.img");
    std::fs::write(&seed, &v1).unwrap();
    let slot = repo.path().join("slot.img");
    let mut opts = repo.options(repo.file_transport(), "rpi4", &slot);
    opts.seed = Some(seed);
    let r = install(&opts, &mut NoBootState, &NoProgress).unwrap();
    assert_eq!(r.chunks_fetched, 0);
    assert_eq!(r.index_pages_fetched, 0);
    assert_eq!(std::fs::read(&slot).unwrap(), v1);
}

#[test]
fn picks_the_board_and_refuses_other_boards() {
    let repo = TestRepo::new();
    let rpi = image(200_000, 4);
    let x86 = image(300_000, 5);
    repo.add("rpi4", "2.0.0", &rpi);
    repo.add("x86", "1.0.0", &x86);
    let slot = repo.path().join("slot.img");
    install(
        &repo.options(repo.file_transport(), "x86", &slot),
        &mut NoBootState,
        &NoProgress,
    )
    .unwrap();
    assert_eq!(std::fs::read(&slot).unwrap(), x86);
    let err = install(
        &repo.options(repo.file_transport(), "beaglebone", &slot),
        &mut NoBootState,
        &NoProgress,
    )
    .unwrap_err();
    assert!(matches!(err, InstallError::NoRelease { .. }), "{err}");
    let mut opts = repo.options(repo.file_transport(), "x86", &slot);
    opts.version = Some(semver::Version::new(2, 0, 0));
    let err = install(&opts, &mut NoBootState, &NoProgress).unwrap_err();
    assert!(matches!(err, InstallError::NoRelease { .. }), "{err}");
}

#[test]
fn refuses_an_older_version_than_committed() {
    let repo = TestRepo::new();
    repo.add("rpi4", "1.0.0", &image(100_000, 6));
    repo.add("rpi4", "1.2.0", &image(100_000, 7));
    let slot = repo.path().join("slot.img");
    install(
        &repo.options(repo.file_transport(), "rpi4", &slot),
        &mut NoBootState,
        &NoProgress,
    )
    .unwrap();
    let mut opts = repo.options(repo.file_transport(), "rpi4", &slot);
    let slot_name = slot.display().to_string();
    skerry_installer::state::record_commit(&opts.state_dir, &slot_name).unwrap();
    let before = std::fs::read(&slot).unwrap();
    opts.version = Some(semver::Version::new(1, 0, 0));
    let err = install(&opts, &mut NoBootState, &NoProgress).unwrap_err();
    assert!(matches!(err, InstallError::Downgrade { .. }), "{err}");
    assert_eq!(
        std::fs::read(&slot).unwrap(),
        before,
        "a refused install wrote the slot"
    );
}

#[test]
fn refuses_a_slot_too_small_without_writing() {
    let repo = TestRepo::new();
    repo.add("rpi4", "1.0.0", &image(500_000, 8));
    let slot = repo.path().join("small.img");
    std::fs::write(&slot, vec![7u8; 100_000]).unwrap();
    let mut opts = repo.options(repo.file_transport(), "rpi4", &slot);
    opts.slot_size = Some(100_000);
    let err = install(&opts, &mut NoBootState, &NoProgress).unwrap_err();
    assert!(
        matches!(
            err,
            InstallError::SlotTooSmall {
                capacity: 100_000,
                needed: 500_000,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(std::fs::read(&slot).unwrap(), vec![7u8; 100_000]);
}

#[test]
fn a_full_disk_is_a_clear_error() {
    let repo = TestRepo::new();
    repo.add("rpi4", "1.0.0", &image(300_000, 9));
    let err = install(
        &repo.options(
            repo.file_transport(),
            "rpi4",
            std::path::Path::new("/dev/full"),
        ),
        &mut NoBootState,
        &NoProgress,
    )
    .unwrap_err();
    let text = format!(
        "{err}: {}",
        std::error::Error::source(&err)
            .map(|s| s.to_string())
            .unwrap_or_default()
    );
    assert!(
        matches!(
            err,
            InstallError::Io {
                action: "write the slot",
                ..
            }
        ),
        "{text}"
    );
    assert!(text.contains("No space left"), "{text}");
}

#[test]
fn a_seed_slot_is_cut_only_up_to_the_image_last_written_to_it() {
    let repo = TestRepo::new();
    let v1 = image(1 << 20, 31);
    let v2 = edit(&v1, 1, 5_000, 32);
    repo.add("rpi4", "1.0.0", &v1);
    repo.add("rpi4", "1.1.0", &v2);
    let slot_a = repo.path().join("a.img");
    let slot_b = repo.path().join("b.img");
    let mut opts = repo.options(repo.file_transport(), "rpi4", &slot_a);
    opts.version = Some(semver::Version::new(1, 0, 0));
    install(&opts, &mut NoBootState, &NoProgress).unwrap();
    // The partition is larger than the image: the rest is old junk.
    let mut padded = std::fs::read(&slot_a).unwrap();
    padded.extend(image(3 << 20, 33));
    std::fs::write(&slot_a, &padded).unwrap();
    let mut opts = repo.options(repo.file_transport(), "rpi4", &slot_b);
    opts.seed = Some(slot_a);
    let r = install(&opts, &mut NoBootState, &NoProgress).unwrap();
    assert_eq!(r.seed_bytes_scanned, v1.len() as u64);
    assert_eq!(std::fs::read(&slot_b).unwrap(), v2);
}
