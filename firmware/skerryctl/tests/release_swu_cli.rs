//! `skerryctl release swu` end to end: the `.swu` it writes passes Debian's real
//! `swupdate -c` against the signing certificate and fails against another; bad input
//! (a missing image, a directory where the key belongs, a version with a space) is
//! refused by name with a non-zero exit and no `.swu` left behind.

#[path = "../../../release/tool/tests/swu_tools/mod.rs"]
mod swu_tools;

use std::path::Path;
use std::process::Output;

use swu_tools::{cert, need, swupdate_check};

fn swu(dir: &Path, version: &str, image: &Path, key: &Path) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_skerryctl"))
        .args(["release", "swu", "--version", version, "--board", "pi"])
        .arg("--image")
        .arg(image)
        .args(["--device", "/dev/mmcblk0p3"])
        .arg("--key")
        .arg(key)
        .arg("--cert")
        .arg(dir.join("release.pem"))
        .arg("--out")
        .arg(dir.join("out"))
        .args(["--output", "json"])
        .output()
        .expect("running skerryctl")
}

#[test]
fn the_swu_skerryctl_writes_passes_swupdate_and_bad_input_is_refused_by_name() {
    need("swupdate");
    need("openssl");
    let dir = tempfile::tempdir().unwrap();
    cert(dir.path(), "release");
    cert(dir.path(), "stranger");
    let image = dir.path().join("rootfs.img");
    std::fs::write(&image, vec![0xa5u8; 200_000]).unwrap();
    let key = dir.path().join("release.key");

    let out = swu(dir.path(), "2.1.0", &image, &key);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let written: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let path = dir.path().join("out/2.1.0.swu");
    assert_eq!(written["path"], path.to_str().unwrap());
    assert_eq!(written["bytes"], std::fs::metadata(&path).unwrap().len());
    let (ok, log) = swupdate_check(&path, &dir.path().join("release.pem"));
    assert!(ok, "swupdate refused the .swu:\n{log}");
    let (ok, _) = swupdate_check(&path, &dir.path().join("stranger.pem"));
    assert!(!ok, "swupdate took a .swu against a stranger's certificate");

    for (version, image, key, says) in [
        (
            "2.2.0",
            dir.path().join("missing.img"),
            key.clone(),
            "--image",
        ),
        (
            "2.3.0",
            image.clone(),
            dir.path().to_path_buf(),
            "is not a file",
        ),
        ("2.4.0 x", image.clone(), key.clone(), "version"),
    ] {
        let out = swu(dir.path(), version, &image, &key);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{version}: {stderr}");
        assert!(stderr.contains(says), "{version}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(!dir.path().join(format!("out/{version}.swu")).exists());
    }
}
