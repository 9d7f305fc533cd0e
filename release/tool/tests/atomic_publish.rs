//! A refused or failed `add` leaves no file behind: the repository tree (every path and
//! its bytes) is the same before and after, whichever check refuses it and whether it is
//! refused before the first write or after.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use skerry_chunks::ChunkParams;
use skerry_release::{add_image, init, AddImage, Expiries, KeySet, ReleaseError, Repository};

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

struct Fixture {
    tmp: tempfile::TempDir,
    keys: KeySet,
    repo: Repository,
}

impl Fixture {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let keys = KeySet::generate(&tmp.path().join("keys"), 1).unwrap();
        let repo = Repository::new(&tmp.path().join("repo"));
        init(&keys, &repo, 1, &Expiries::default(), SystemTime::now()).unwrap();
        let fx = Self { tmp, keys, repo };
        let img = fx.image("good", &[7u8; 50_000]);
        fx.add(&fx.keys, "1.0.0", &img).unwrap();
        fx
    }

    fn image(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.tmp.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    fn add(&self, keys: &KeySet, version: &str, image: &Path) -> Result<(), ReleaseError> {
        let add = AddImage {
            board: "rpi4",
            version,
            channel: "stable",
            image,
            params: ChunkParams::DEFAULT,
            level: 3,
        };
        add_image(
            keys,
            &self.repo,
            &add,
            &Expiries::default(),
            SystemTime::now(),
        )
        .map(|_| ())
    }

    /// Runs a refused `add` and checks the repository did not change.
    fn refused(&self, what: &str, add: impl FnOnce() -> Result<(), ReleaseError>) -> ReleaseError {
        let before = tree(&self.repo.dir);
        let err = add().expect_err(what);
        let after = tree(&self.repo.dir);
        let added: Vec<_> = after.keys().filter(|p| !before.contains_key(*p)).collect();
        assert!(added.is_empty(), "{what} ({err}) left {added:?}");
        assert!(before == after, "{what} ({err}) changed the repository");
        err
    }
}

#[test]
fn wrong_keys_leave_no_files() {
    let fx = Fixture::new();
    let other = KeySet::generate(&fx.tmp.path().join("other-keys"), 1).unwrap();
    let img = fx.image("next", &[8u8; 50_000]);
    let err = fx.refused("wrong keys", || fx.add(&other, "1.1.0", &img));
    assert!(matches!(err, ReleaseError::WrongKeys { .. }), "{err}");
}

#[test]
fn an_empty_image_leaves_no_files() {
    let fx = Fixture::new();
    let img = fx.image("empty", b"");
    let err = fx.refused("empty image", || fx.add(&fx.keys, "1.1.0", &img));
    assert!(matches!(err, ReleaseError::EmptyImage { .. }), "{err}");
}

#[test]
fn a_bad_or_duplicate_version_leaves_no_files() {
    let fx = Fixture::new();
    let img = fx.image("next", &[8u8; 50_000]);
    let err = fx.refused("bad version", || fx.add(&fx.keys, "one", &img));
    assert!(matches!(err, ReleaseError::BadVersion { .. }), "{err}");
    let err = fx.refused("duplicate version", || fx.add(&fx.keys, "1.0.0", &img));
    assert!(matches!(err, ReleaseError::AlreadyReleased { .. }), "{err}");
}

#[test]
fn a_missing_image_leaves_no_files() {
    let fx = Fixture::new();
    let img = fx.tmp.path().join("no-such-image");
    let err = fx.refused("missing image", || fx.add(&fx.keys, "1.1.0", &img));
    assert!(matches!(err, ReleaseError::UnreadableImage { .. }), "{err}");
}

#[test]
fn an_image_that_fails_while_being_read_leaves_no_files() {
    // A directory passes the up-front checks and fails only once packing has begun,
    // after the release's directories and the pack's temporary file were created.
    let fx = Fixture::new();
    let img = fx.tmp.path().join("a-directory");
    std::fs::create_dir(&img).unwrap();
    let err = fx.refused("unreadable image", || fx.add(&fx.keys, "1.1.0", &img));
    assert!(matches!(err, ReleaseError::Io { .. }), "{err}");
}

#[test]
fn a_refusal_after_metadata_was_written_leaves_no_files() {
    // The next snapshot version already exists (a leftover the publisher must not
    // overwrite): targets were written first, then the snapshot write is refused.
    let fx = Fixture::new();
    let next_snapshot = fx.repo.metadata_dir().join("3.snapshot.json");
    std::fs::write(&next_snapshot, b"leftover").unwrap();
    let img = fx.image("next", &[8u8; 50_000]);
    let err = fx.refused("existing snapshot", || fx.add(&fx.keys, "1.1.0", &img));
    assert!(matches!(err, ReleaseError::Exists { .. }), "{err}");
    assert_eq!(std::fs::read(&next_snapshot).unwrap(), b"leftover");
}
