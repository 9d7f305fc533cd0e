//! `skerryctl flash` to files: sparse images round-trip (holes, zero runs inside data,
//! data at the very end), zeros become holes, an overwritten file with old garbage ends
//! equal to the image, and the JSON summary adds up with nothing else printed.

mod flash_support;

use std::os::unix::fs::MetadataExt;

use flash_support::*;

#[test]
fn a_sparse_image_round_trips_to_a_new_file_as_a_sparse_file() {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("disk.img");
    let len = 64 * MIB + 4096;
    let expected = sparse_image(&image, len);
    let out = dir.path().join("out.img");
    let s = flash_json(&[
        "--image",
        image.to_str().unwrap(),
        "--to",
        out.to_str().unwrap(),
    ]);
    assert_eq!(std::fs::read(&out).unwrap(), expected);
    let n = |k: &str| s[k].as_u64().unwrap_or_else(|| panic!("{k} in {s}"));
    assert_eq!(s["target_kind"], "new file");
    assert_eq!(s["verified"], true);
    assert_eq!(n("image_bytes"), len);
    assert_eq!(n("bytes_written") + n("bytes_skipped"), len);
    // The data is 8 MiB minus the 2 MiB zero run written inside it, in whole 4 KiB
    // blocks (the last data starts inside one).
    let written = n("bytes_written");
    assert!((6 * MIB..=6 * MIB + 8192).contains(&written), "{s}");
    assert!(n("bytes_verified") >= n("bytes_written"), "{s}");
    assert!(s["seconds"].as_f64().unwrap() >= 0.0);
    let allocated = std::fs::metadata(&out).unwrap().blocks() * 512;
    assert!(
        allocated < 8 * MIB,
        "the zeros stayed holes: {allocated} bytes allocated"
    );
}

#[test]
fn an_overwritten_file_with_garbage_ends_equal_to_the_image() {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("disk.img");
    let expected = sparse_image(&image, 32 * MIB);
    let out = dir.path().join("old.img");
    std::fs::write(&out, noise(40 * MIB as usize, 99)).unwrap();
    let s = flash_json(&[
        "--image",
        image.to_str().unwrap(),
        "--to",
        out.to_str().unwrap(),
        "--overwrite",
    ]);
    assert_eq!(s["target_kind"], "file");
    assert_eq!(
        std::fs::read(&out).unwrap(),
        expected,
        "old bytes left in the target"
    );
}

#[test]
fn text_output_without_a_terminal_draws_no_bar() {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("disk.img");
    sparse_image(&image, 16 * MIB);
    let out = dir.path().join("out.img");
    let run = flash(&[
        "--image",
        image.to_str().unwrap(),
        "--to",
        out.to_str().unwrap(),
    ]);
    assert!(run.status.success(), "{}", stderr(&run));
    assert_eq!(
        stderr(&run),
        "",
        "no progress bar when stderr is not a terminal"
    );
    let text = String::from_utf8(run.stdout).unwrap();
    assert!(
        text.starts_with("wrote ") && text.contains("verified"),
        "{text}"
    );
}

#[test]
fn a_dry_run_checks_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("disk.img");
    sparse_image(&image, 16 * MIB);
    let out = dir.path().join("out.img");
    let s = flash_json(&[
        "--image",
        image.to_str().unwrap(),
        "--to",
        out.to_str().unwrap(),
        "--dry-run",
    ]);
    assert_eq!(s["dry_run"], true);
    assert_eq!(s["bytes_written"], 0);
    assert!(!out.exists());
}
