//! `skerryctl release`: keys, layout, immutability and the errors operators see.

mod support {
    pub mod cli;
    pub mod maintenance;
    pub mod refused;
    pub mod release;
}

use std::path::Path;

use sha2::Digest;
use support::cli::ok;
use support::maintenance::{rotate_root, timestamp};
use support::refused::fails;
use support::release::{add, init, keygen};

#[test]
fn keygen_init_add_write_a_content_addressed_consistent_snapshot_repository() {
    let tmp = tempfile::tempdir().unwrap();
    let (keys, repo, img) = (
        tmp.path().join("k"),
        tmp.path().join("r"),
        tmp.path().join("img"),
    );
    ok(&[&keygen(&keys)[..], &["--root-keys", "3"]].concat());
    for f in [
        "root-1.key",
        "root-2.key",
        "root-3.key",
        "targets.key",
        "snapshot.key",
        "timestamp.key",
    ] {
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(keys.join(f)).unwrap().permissions(),
        );
        assert_eq!(mode & 0o777, 0o600, "{f}");
    }
    fails(&keygen(&keys), "already exists");
    fails(
        &[&init(&keys, &repo)[..], &["--threshold", "4"]].concat(),
        "threshold",
    );
    ok(&[
        &init(&keys, &repo)[..],
        &["--threshold", "2", "--expires", "30d"],
    ]
    .concat());
    fails(&init(&keys, &repo), "already exists");
    let root: serde_json::Value =
        serde_json::from_slice(&std::fs::read(repo.join("metadata/1.root.json")).unwrap()).unwrap();
    assert_eq!(root["signed"]["roles"]["root"]["threshold"], 2);
    assert_eq!(
        root["signed"]["roles"]["root"]["keyids"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    assert_eq!(root["signatures"].as_array().unwrap().len(), 3);
    assert_eq!(root["signed"]["consistent_snapshot"], true);

    std::fs::write(&img, vec![42u8; 100_000]).unwrap();
    ok(&[
        &add(&keys, &repo, "rpi4", "1.0.0", &img)[..],
        &["--channel", "beta"],
    ]
    .concat());
    fails(
        &add(&keys, &repo, "rpi4", "1.0.0", &img),
        "already released",
    );
    fails(
        &add(&keys, &repo, "rpi4", "one", &img),
        "semantic versioning",
    );
    fails(&add(&keys, &repo, "../etc", "1.0.1", &img), "board");
    let no_keys = tmp.path().join("nokeys");
    fails(&add(&no_keys, &repo, "rpi4", "1.0.1", &img), "keygen");

    let md = repo.join("metadata");
    for f in [
        "1.root.json",
        "1.targets.json",
        "1.snapshot.json",
        "2.targets.json",
        "2.snapshot.json",
        "timestamp.json",
    ] {
        assert!(md.join(f).exists(), "{f}");
    }
    let targets: serde_json::Value =
        serde_json::from_slice(&std::fs::read(md.join("2.targets.json")).unwrap()).unwrap();
    let idx = &targets["signed"]["targets"]["rpi4/1.0.0/image.idx"];
    assert_eq!(idx["custom"]["skerry"]["channel"], "beta");
    assert_eq!(idx["custom"]["skerry"]["image_length"], 100_000);
    for name in ["rpi4/1.0.0/image.idx", "rpi4/1.0.0/image.pack"] {
        let t = &targets["signed"]["targets"][name];
        let sha = t["hashes"]["sha256"].as_str().unwrap();
        let (dir, file) = name.rsplit_once('/').unwrap();
        let bytes =
            std::fs::read(repo.join("targets").join(dir).join(format!("{sha}.{file}"))).unwrap();
        assert_eq!(hex::encode(sha2::Sha256::digest(&bytes)), sha);
        assert_eq!(t["length"], bytes.len());
    }

    let ts = |repo: &Path| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(repo.join("metadata/timestamp.json")).unwrap())
            .unwrap()
    };
    let before = ts(&repo)["signed"]["version"].as_u64().unwrap();
    ok(&[&timestamp(&keys, &repo)[..], &["--expires", "1d"]].concat());
    assert_eq!(ts(&repo)["signed"]["version"].as_u64().unwrap(), before + 1);
    assert!(
        !md.join("3.targets.json").exists(),
        "re-signing the timestamp touched targets"
    );
}

#[test]
fn root_rotation_is_signed_by_old_and_new_root_keys() {
    let tmp = tempfile::tempdir().unwrap();
    let (keys, keys2, repo) = (
        tmp.path().join("k"),
        tmp.path().join("k2"),
        tmp.path().join("r"),
    );
    ok(&keygen(&keys));
    ok(&[&keygen(&keys2)[..], &["--root-keys", "2"]].concat());
    ok(&init(&keys, &repo));
    fails(&rotate_root(&keys2, &keys2, &repo), "do not match");
    ok(&[
        &rotate_root(&keys, &keys2, &repo)[..],
        &["--threshold", "2"],
    ]
    .concat());
    let root2: serde_json::Value =
        serde_json::from_slice(&std::fs::read(repo.join("metadata/2.root.json")).unwrap()).unwrap();
    assert_eq!(root2["signed"]["version"], 2);
    assert_eq!(
        root2["signatures"].as_array().unwrap().len(),
        3,
        "1 old + 2 new root signatures"
    );
    // Old targets keys can no longer publish.
    let img = tmp.path().join("img");
    std::fs::write(&img, b"image").unwrap();
    fails(&add(&keys, &repo, "b", "1.0.0", &img), "do not match");
    ok(&add(&keys2, &repo, "b", "1.0.0", &img));
}
