//! `skerryctl release`: keys, layout, immutability and the errors operators see.

use std::path::Path;
use std::process::{Command, Output};

use sha2::Digest;

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_skerryctl"))
        .args(args)
        .output()
        .unwrap()
}

fn ok(args: &[&str]) -> String {
    let out = run(args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn fails(args: &[&str], needle: &str) {
    let out = run(args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{args:?} succeeded");
    assert!(
        err.contains(needle),
        "{args:?}: expected \"{needle}\" in: {err}"
    );
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn keygen_init_add_write_a_content_addressed_consistent_snapshot_repository() {
    let tmp = tempfile::tempdir().unwrap();
    let (keys, repo, img) = (
        tmp.path().join("k"),
        tmp.path().join("r"),
        tmp.path().join("img"),
    );
    ok(&["release", "keygen", "--out", s(&keys), "--root-keys", "3"]);
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
    fails(&["release", "keygen", "--out", s(&keys)], "already exists");
    fails(
        &[
            "release",
            "init",
            "--keys",
            s(&keys),
            "--repo",
            s(&repo),
            "--threshold",
            "4",
        ],
        "threshold",
    );
    ok(&[
        "release",
        "init",
        "--keys",
        s(&keys),
        "--repo",
        s(&repo),
        "--threshold",
        "2",
        "--expires",
        "30d",
    ]);
    fails(
        &["release", "init", "--keys", s(&keys), "--repo", s(&repo)],
        "already exists",
    );
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
        "release",
        "add",
        "--keys",
        s(&keys),
        "--repo",
        s(&repo),
        "--board",
        "rpi4",
        "--version",
        "1.0.0",
        "--image",
        s(&img),
        "--channel",
        "beta",
    ]);
    fails(
        &[
            "release",
            "add",
            "--keys",
            s(&keys),
            "--repo",
            s(&repo),
            "--board",
            "rpi4",
            "--version",
            "1.0.0",
            "--image",
            s(&img),
        ],
        "already released",
    );
    fails(
        &[
            "release",
            "add",
            "--keys",
            s(&keys),
            "--repo",
            s(&repo),
            "--board",
            "rpi4",
            "--version",
            "one",
            "--image",
            s(&img),
        ],
        "semantic versioning",
    );
    fails(
        &[
            "release",
            "add",
            "--keys",
            s(&keys),
            "--repo",
            s(&repo),
            "--board",
            "../etc",
            "--version",
            "1.0.1",
            "--image",
            s(&img),
        ],
        "board",
    );
    fails(
        &[
            "release",
            "add",
            "--keys",
            s(&tmp.path().join("nokeys")),
            "--repo",
            s(&repo),
            "--board",
            "rpi4",
            "--version",
            "1.0.1",
            "--image",
            s(&img),
        ],
        "keygen",
    );

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
    ok(&[
        "release",
        "timestamp",
        "--keys",
        s(&keys),
        "--repo",
        s(&repo),
        "--expires",
        "1d",
    ]);
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
    ok(&["release", "keygen", "--out", s(&keys)]);
    ok(&["release", "keygen", "--out", s(&keys2), "--root-keys", "2"]);
    ok(&["release", "init", "--keys", s(&keys), "--repo", s(&repo)]);
    fails(
        &[
            "release",
            "rotate-root",
            "--keys",
            s(&keys2),
            "--new-keys",
            s(&keys2),
            "--repo",
            s(&repo),
        ],
        "do not match",
    );
    ok(&[
        "release",
        "rotate-root",
        "--keys",
        s(&keys),
        "--new-keys",
        s(&keys2),
        "--repo",
        s(&repo),
        "--threshold",
        "2",
    ]);
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
    fails(
        &[
            "release",
            "add",
            "--keys",
            s(&keys),
            "--repo",
            s(&repo),
            "--board",
            "b",
            "--version",
            "1.0.0",
            "--image",
            s(&img),
        ],
        "do not match",
    );
    ok(&[
        "release",
        "add",
        "--keys",
        s(&keys2),
        "--repo",
        s(&repo),
        "--board",
        "b",
        "--version",
        "1.0.0",
        "--image",
        s(&img),
    ]);
}
