//! The copy and the verification against files, with both zero policies: a target whose
//! unwritten bytes are zeros, and one holding old data (what a block device is).

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use indicatif::ProgressBar;

use super::copy::{copy, Copied, BLOCK, CHUNK};
use super::error::FlashError;
use super::layout::data_ranges;
use super::target::{Target, Zeros};
use super::verify::{settle, verify};

const MIB: u64 = 1 << 20;

/// A 24 MiB sparse image: holes, data with a zero run inside, data at the very end.
fn image(dir: &Path) -> (File, Vec<u8>) {
    let path = dir.join("disk.img");
    let file = File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .unwrap();
    let len = 24 * MIB;
    file.set_len(len).unwrap();
    let mut expected = vec![0u8; len as usize];
    let mut put = |at: u64, bytes: &[u8]| {
        file.write_all_at(bytes, at).unwrap();
        expected[at as usize..at as usize + bytes.len()].copy_from_slice(bytes);
    };
    let noise: Vec<u8> = (0..5 * MIB as usize)
        .map(|i| (i * 7 + i / 4099) as u8 | 1)
        .collect();
    put(MIB, &noise);
    put(MIB + 3 * MIB, &vec![0; 2 * MIB as usize]); // zeros written as data
    put(6 * MIB, &noise[..CHUNK + BLOCK]);
    put(len - 5000, &noise[..5000]);
    (file, expected)
}

fn target(path: &Path, zeros: Zeros) -> Target {
    let file = File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .unwrap();
    Target {
        path: path.into(),
        file,
        zeros,
    }
}

fn flash(image: &File, len: u64, target: &Target) -> Copied {
    let data = data_ranges(image, len).unwrap();
    let copied = copy(
        image,
        Path::new("disk.img"),
        len,
        &data,
        target,
        &ProgressBar::hidden(),
    )
    .unwrap();
    settle(target).unwrap();
    copied
}

#[test]
fn a_fresh_file_gets_the_image_with_zeros_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let (image, expected) = image(dir.path());
    let len = expected.len() as u64;
    let path = dir.path().join("out.img");
    let t = target(&path, Zeros::Guaranteed);
    t.file.set_len(len).unwrap();
    let copied = flash(&image, len, &t);
    assert_eq!(std::fs::read(&path).unwrap(), expected);
    assert_eq!(copied.written + copied.skipped, len);
    assert!(copied.written < 8 * MIB, "wrote {}", copied.written);
    assert!(verify(&t, &copied.pieces, &ProgressBar::hidden()).unwrap() > 0);
}

#[test]
fn a_target_with_old_data_ends_equal_to_the_image() {
    let dir = tempfile::tempdir().unwrap();
    let (image, expected) = image(dir.path());
    let len = expected.len() as u64;
    let path = dir.path().join("card.img");
    // Garbage everywhere, but one stretch that is already zero (then not rewritten).
    let mut garbage: Vec<u8> = (0..len as usize).map(|i| (i % 251) as u8 | 0x80).collect();
    garbage[16 * MIB as usize..18 * MIB as usize].fill(0);
    std::fs::write(&path, &garbage).unwrap();
    let t = target(&path, Zeros::Unknown);
    let copied = flash(&image, len, &t);
    assert_eq!(std::fs::read(&path).unwrap(), expected);
    assert_eq!(
        copied.skipped,
        2 * MIB,
        "only the target's own zeros are skipped"
    );
    assert_eq!(copied.written, len - 2 * MIB);
    verify(&t, &copied.pieces, &ProgressBar::hidden()).unwrap();
}

#[test]
fn verification_catches_a_byte_changed_on_the_target() {
    let dir = tempfile::tempdir().unwrap();
    let (image, expected) = image(dir.path());
    let len = expected.len() as u64;
    for (at, byte) in [
        (MIB + 12345, 0u8),
        (4 * MIB + 100, 9),
        (len - 1, 0),
        (20 * MIB, 1),
    ] {
        let path = dir.path().join(format!("out-{at}.img"));
        let t = target(&path, Zeros::Guaranteed);
        t.file.set_len(len).unwrap();
        let copied = flash(&image, len, &t);
        verify(&t, &copied.pieces, &ProgressBar::hidden()).unwrap();
        t.file
            .write_all_at(&[byte ^ expected[at as usize] ^ 0x5a], at)
            .unwrap();
        settle(&t).unwrap();
        match verify(&t, &copied.pieces, &ProgressBar::hidden()) {
            Err(FlashError::Mismatch { offset, len, .. }) => {
                assert!(
                    offset <= at && at < offset + len,
                    "byte {at} in {offset}+{len}"
                )
            }
            other => panic!("a changed byte at {at} was not caught: {other:?}"),
        }
    }
}
