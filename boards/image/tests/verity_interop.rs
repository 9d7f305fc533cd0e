//! Our verity tree against Debian's `veritysetup` (package cryptsetup-bin; neither
//! `format` nor `verify` needs device-mapper): the bytes and root hash we write equal
//! what `veritysetup format` writes, `veritysetup verify` accepts them, and a flipped
//! data byte makes it refuse.

use std::path::Path;
use std::process::Command;

use skerry_image::verity::{append_tree, tree_bytes, BLOCK};

fn veritysetup() -> Command {
    let found = [
        "/usr/sbin/veritysetup",
        "/sbin/veritysetup",
        "/usr/bin/veritysetup",
    ]
    .into_iter()
    .find(|p| Path::new(p).is_file())
    .unwrap_or_else(|| {
        panic!("veritysetup not found: install cryptsetup-bin (scripts/deps/image.apt)")
    });
    Command::new(found)
}

fn data(blocks: u64) -> Vec<u8> {
    // Deterministic, varied bytes (an LCG), a zero block in the middle like free space.
    let mut x: u32 = 0x1234_5678;
    let mut v: Vec<u8> = (0..blocks * BLOCK)
        .map(|_| {
            x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (x >> 24) as u8
        })
        .collect();
    if blocks > 4 {
        v[(BLOCK * 3) as usize..(BLOCK * 4) as usize].fill(0);
    }
    v
}

fn args(cmd: &mut Command, blocks: u64, salt: &str) {
    cmd.args(["--no-superblock", "--format=1", "--hash=sha256"])
        .args(["--data-block-size=4096", "--hash-block-size=4096"])
        .arg(format!("--data-blocks={blocks}"))
        .arg(format!("--hash-offset={}", blocks * BLOCK))
        .arg(format!("--salt={salt}"));
}

fn verify(img: &Path, blocks: u64, salt: &str, root: &str) -> bool {
    let mut cmd = veritysetup();
    cmd.arg("verify");
    args(&mut cmd, blocks, salt);
    cmd.arg(img).arg(img).arg(root);
    cmd.output().expect("running veritysetup").status.success()
}

#[test]
fn our_tree_is_veritysetups_and_it_catches_a_flipped_byte() {
    let dir = tempfile::tempdir().unwrap();
    let salt = [0xa5u8; 32];
    let salt_hex = hex::encode(salt);
    // One level, two levels, three levels.
    for blocks in [5u64, 300, 128 * 128 + 3] {
        let ours = dir.path().join(format!("ours-{blocks}.img"));
        let theirs = dir.path().join(format!("theirs-{blocks}.img"));
        std::fs::write(&ours, data(blocks)).unwrap();
        std::fs::write(&theirs, data(blocks)).unwrap();

        let p = append_tree(&ours, blocks, &salt).unwrap();
        assert_eq!(p.hash_offset, blocks * BLOCK);
        let ours_bytes = std::fs::read(&ours).unwrap();
        assert_eq!(ours_bytes.len() as u64, blocks * BLOCK + tree_bytes(blocks));

        let mut cmd = veritysetup();
        cmd.arg("format");
        args(&mut cmd, blocks, &salt_hex);
        let out = cmd.arg(&theirs).arg(&theirs).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        let root = text
            .lines()
            .find_map(|l| l.strip_prefix("Root hash:"))
            .map(str::trim)
            .expect("veritysetup format prints the root hash");
        assert_eq!(p.root_hash, root, "{blocks} blocks");
        assert_eq!(
            ours_bytes,
            std::fs::read(&theirs).unwrap(),
            "{blocks} blocks: tree bytes"
        );

        assert!(verify(&ours, blocks, &salt_hex, &p.root_hash));
        let mut flipped = ours_bytes.clone();
        flipped[(BLOCK * (blocks - 1) + 17) as usize] ^= 0x01;
        std::fs::write(&ours, &flipped).unwrap();
        assert!(
            !verify(&ours, blocks, &salt_hex, &p.root_hash),
            "a flipped data byte must fail verify"
        );
    }
}

#[test]
fn refuses_more_data_blocks_than_the_file_has_and_zero() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("short.img");
    std::fs::write(&img, data(2)).unwrap();
    let e = append_tree(&img, 3, &[0; 32]).unwrap_err().to_string();
    assert!(e.contains("shorter than its data blocks"), "{e}");
    let e = append_tree(&img, 0, &[0; 32]).unwrap_err().to_string();
    assert!(e.contains("1 to"), "{e}");
}
