//! Names from metadata never lead a transport outside the repository: a pack name with
//! `..` is refused when the release is selected, and the file transport refuses any
//! path that is not plainly inside its directory.

use std::collections::BTreeMap;

use serde_json::json;
use skerry_installer::select::{select, Selector};
use skerry_installer::transport::FileTransport;
use skerry_installer::{FetchError, InstallError, Transport};
use skerry_tuf::{Expiry, TargetFile, Targets, SPEC_VERSION};

const SHA: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn targets_with_pack(pack: &str) -> Targets {
    let custom = json!({"skerry": {
        "board": "rpi4", "version": "1.0.0", "channel": "stable",
        "image_length": 10, "image_sha256": SHA,
        "head_length": 176, "head_sha256": SHA, "pack": pack, "image_blake3": SHA,
    }});
    let file = |custom| TargetFile {
        length: 1000,
        hashes: [("sha256".to_string(), SHA.to_string())].into(),
        custom,
    };
    let mut targets = BTreeMap::new();
    targets.insert("rpi4/1.0.0/image.idx".to_string(), file(Some(custom)));
    targets.insert(pack.to_string(), file(None));
    Targets {
        kind: "targets".into(),
        spec_version: SPEC_VERSION.into(),
        version: 1,
        expires: Expiry::parse("2100-01-01T00:00:00Z").unwrap(),
        targets,
    }
}

fn pick(targets: &Targets) -> Result<String, InstallError> {
    let want = Selector {
        board: "rpi4",
        ..Default::default()
    };
    select(targets, &want).map(|s| s.pack_path)
}

#[test]
fn the_release_pack_name_is_accepted() {
    let path = pick(&targets_with_pack("rpi4/1.0.0/image.pack")).unwrap();
    assert_eq!(path, format!("targets/rpi4/1.0.0/{SHA}.image.pack"));
}

#[test]
fn a_pack_name_climbing_out_of_the_release_is_refused() {
    for pack in [
        "rpi4/1.0.0/../../../outside/image.pack",
        "rpi4/1.0.0/../1.0.1/image.pack",
        "rpi4/1.0.0//image.pack",
        "rpi4/1.0.0/sub/image.pack",
    ] {
        match pick(&targets_with_pack(pack)) {
            Err(InstallError::BadRelease { .. }) => {}
            other => panic!("pack {pack:?}: expected BadRelease, got {other:?}"),
        }
    }
}

#[test]
fn the_file_transport_stays_inside_its_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    std::fs::create_dir_all(repo.join("metadata")).unwrap();
    std::fs::write(repo.join("metadata/inside.json"), b"in").unwrap();
    std::fs::write(tmp.path().join("secret"), b"out").unwrap();
    let transport = FileTransport::new(repo);
    assert!(transport.open("metadata/inside.json", 0, None).is_ok());
    let outside = tmp.path().join("secret");
    for path in [
        "../secret",
        "metadata/../../secret",
        outside.to_str().unwrap(),
    ] {
        match transport.open(path, 0, None) {
            Err(FetchError::BadPath { .. }) => {}
            Err(other) => panic!("{path:?}: expected BadPath, got {other:?}"),
            Ok(_) => panic!("{path:?} was opened outside the repository"),
        }
    }
}
