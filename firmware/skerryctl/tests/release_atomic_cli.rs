//! `skerryctl release add` refused for any reason leaves the repository tree exactly as
//! it was: no release directory, pack, index or metadata file is left behind.

mod support {
    pub mod cli;
    pub mod refused;
    pub mod release;
}

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use support::cli::ok;
use support::refused::fails;
use support::release::{add, init, keygen};

fn tree(dir: &Path) -> BTreeMap<PathBuf, Option<Vec<u8>>> {
    fn walk(dir: &Path, base: &Path, out: &mut BTreeMap<PathBuf, Option<Vec<u8>>>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(base).unwrap().to_path_buf();
            if p.is_dir() {
                out.insert(rel, None);
                walk(&p, base, out);
            } else {
                out.insert(rel, Some(std::fs::read(&p).unwrap()));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

#[test]
fn every_refused_release_add_leaves_the_repository_tree_unchanged() {
    let tmp = tempfile::tempdir().unwrap();
    let (keys, other, repo) = (
        tmp.path().join("k"),
        tmp.path().join("other"),
        tmp.path().join("r"),
    );
    ok(&keygen(&keys));
    ok(&keygen(&other));
    ok(&init(&keys, &repo));
    let img = tmp.path().join("img");
    std::fs::write(&img, vec![5u8; 80_000]).unwrap();
    ok(&add(&keys, &repo, "rpi4", "1.0.0", &img));
    let empty = tmp.path().join("empty");
    std::fs::write(&empty, b"").unwrap();
    let missing = tmp.path().join("missing");

    let refusals: [(&str, Vec<&str>, &str); 5] = [
        (
            "wrong keys",
            add(&other, &repo, "rpi4", "1.1.0", &img).to_vec(),
            "do not match",
        ),
        (
            "empty image",
            add(&keys, &repo, "rpi4", "1.1.0", &empty).to_vec(),
            "is empty",
        ),
        (
            "bad version",
            add(&keys, &repo, "rpi4", "one", &img).to_vec(),
            "semantic versioning",
        ),
        (
            "duplicate version",
            add(&keys, &repo, "rpi4", "1.0.0", &img).to_vec(),
            "already released",
        ),
        (
            "missing image",
            add(&keys, &repo, "rpi4", "1.1.0", &missing).to_vec(),
            "cannot read image",
        ),
    ];
    for (what, args, needle) in refusals {
        let before = tree(&repo);
        fails(&args, needle);
        let after = tree(&repo);
        let added: Vec<_> = after.keys().filter(|p| !before.contains_key(*p)).collect();
        assert!(added.is_empty(), "{what} left {added:?}");
        assert!(before == after, "{what} changed the repository");
    }
}
