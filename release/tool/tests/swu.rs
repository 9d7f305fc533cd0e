//! `.swu` files checked by Debian's real `swupdate -c` (it verifies the CMS signature
//! of sw-description against `-k CERT` and the image's sha256): ours is accepted; a
//! flipped image byte and a stranger's certificate are refused. Needs Debian's
//! `swupdate` and `openssl` (scripts/deps/ddi.apt); fails naming them if missing.

mod swu_tools;

use skerry_release::swu::{write_swu, SwuSpec};
use swu_tools::{cert, need, swupdate_check};

#[test]
fn swupdate_accepts_our_swu_and_refuses_a_tampered_one() {
    need("swupdate");
    need("openssl");
    let dir = tempfile::tempdir().unwrap();
    cert(dir.path(), "release");
    cert(dir.path(), "stranger");
    let image = dir.path().join("image.bin");
    // Longer than the 1 MiB pieces it is hashed and copied in, and not a multiple of
    // the cpio's 4-byte alignment.
    let content: Vec<u8> = (0..1_300_003u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&image, content).unwrap();
    let target = dir.path().join("slot.img");
    let target_s = target.to_str().unwrap().to_string();
    let spec = SwuSpec {
        version: "2.0.0",
        board: "pi",
        image: &image,
        device: &target_s,
        key_pem: &dir.path().join("release.key"),
        cert_pem: &dir.path().join("release.pem"),
    };
    let swu = write_swu(&spec, &dir.path().join("out")).unwrap();
    let (ok, log) = swupdate_check(&swu, &dir.path().join("release.pem"));
    assert!(ok, "swupdate refused our .swu:\n{log}");
    let (ok, _) = swupdate_check(&swu, &dir.path().join("stranger.pem"));
    assert!(!ok, "swupdate accepted a .swu signed by another key");
    let mut bytes = std::fs::read(&swu).unwrap();
    let at = bytes.len() - 1000;
    bytes[at] ^= 0xff;
    let bad = dir.path().join("bad.swu");
    std::fs::write(&bad, bytes).unwrap();
    let (ok, _) = swupdate_check(&bad, &dir.path().join("release.pem"));
    assert!(
        !ok,
        "swupdate accepted an image whose sha256 does not match"
    );
}
