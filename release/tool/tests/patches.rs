//! Patched chunks at publishing: `add` with `--delta-from` publishes, per base, a patch
//! index and a patch pack beside the release's own index and pack (which stay as they
//! are without patches); what a device on a base needs (`objects_needed`) shrinks; bad
//! bases are refused before anything is written.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use skerry_chunks::ChunkParams;
use skerry_release::{
    add_image, add_image_with_deltas, init, objects_needed, AddImage, Deltas, Expiries, KeySet,
    ReleaseError, Repository,
};

/// Text-like bytes (words from a small vocabulary): compressible like a filesystem's.
fn text(n: usize, seed: u64) -> Vec<u8> {
    const WORDS: &[&str] = &[
        "usr",
        "lib",
        "share",
        "doc",
        "bin",
        "etc",
        "apt",
        "debian",
        "package",
        "version",
        "x86_64",
        "linux",
        "gnu",
        "so",
        "conf",
        "copyright",
        "changelog",
        "gz",
        "python3",
        "perl",
        "locale",
        "man",
        "info",
        "status",
        "Depends:",
        "Priority:",
        "optional",
    ];
    let mut s = seed | 1;
    let mut out = Vec::with_capacity(n + 16);
    while out.len() < n {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        out.extend_from_slice(WORDS[(s % WORDS.len() as u64) as usize].as_bytes());
        out.push(if s & 0x300 == 0 { b'\n' } else { b' ' });
        if s & 0xf000 == 0 {
            out.extend_from_slice(&s.to_le_bytes());
        }
    }
    out.truncate(n);
    out
}

/// The new version: `inserts` insertions of 300 bytes that shift everything after them,
/// and `edits` 4-byte edits spread over the image.
fn shifted(base: &[u8], inserts: usize, edits: usize) -> Vec<u8> {
    let mut v = base.to_vec();
    for k in 0..edits {
        let at = (k * 7919 * 131 + 4099) % (v.len() - 8);
        v[at..at + 4].copy_from_slice(&(k as u32).to_le_bytes());
    }
    for k in (0..inserts).rev() {
        let at = (k + 1) * v.len() / (inserts + 1);
        let extra = text(300, 1000 + k as u64);
        v.splice(at..at, extra);
    }
    v
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
        Self { tmp, keys, repo }
    }

    fn image(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.tmp.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    fn add(
        &self,
        version: &str,
        image: &Path,
        from: &[String],
        params: ChunkParams,
    ) -> Result<skerry_release::publish::AddedRelease, ReleaseError> {
        let add = AddImage {
            board: "rpi4",
            version,
            channel: "stable",
            image,
            params,
            level: 3,
        };
        let deltas = Deltas {
            from,
            level: skerry_release::delta::DEFAULT_PATCH_LEVEL,
        };
        add_image_with_deltas(
            &self.keys,
            &self.repo,
            &add,
            &deltas,
            &Expiries::default(),
            SystemTime::now(),
        )
    }
}

#[test]
fn patches_shrink_what_a_device_on_the_base_needs() {
    let fx = Fixture::new();
    let base = text(6 << 20, 1);
    let v2 = shifted(&base, 12, 150);
    let b = fx.image("v1.img", &base);
    let n = fx.image("v2.img", &v2);
    fx.add("1.0.0", &b, &[], ChunkParams::DEFAULT).unwrap();
    let added = fx
        .add("1.1.0", &n, &["1.0.0".into()], ChunkParams::DEFAULT)
        .unwrap();
    assert_eq!(added.patches.len(), 1);
    let set = &added.patches[0];
    assert!(set.patched_chunks > 0);

    let with = objects_needed(&fx.repo, "rpi4", "1.1.0", Some("1.0.0")).unwrap();
    assert_eq!(with.chunks_patched, set.patched_chunks);
    // Without patches: the same release published in a repository without them.
    let plain = Fixture::new();
    let pb = plain.image("v1.img", &base);
    let pn = plain.image("v2.img", &v2);
    plain.add("1.0.0", &pb, &[], ChunkParams::DEFAULT).unwrap();
    plain.add("1.1.0", &pn, &[], ChunkParams::DEFAULT).unwrap();
    let without = objects_needed(&plain.repo, "rpi4", "1.1.0", Some("1.0.0")).unwrap();
    assert_eq!(without.chunks_patched, 0);
    assert_eq!(
        without.chunks_full,
        with.chunks_full + with.chunks_patched,
        "the same chunks are missing either way"
    );
    eprintln!(
        "shifted content (6 MiB, 12 inserts, 150 edits): {} chunks missing; without patches {} B \
         of chunks ({} B total), with patches {} B of chunks and patches ({} B total, patch index {} B)",
        without.chunks_full,
        without.payload_bytes(),
        without.total_bytes(),
        with.payload_bytes(),
        with.total_bytes(),
        set.index_len,
    );
    assert!(with.total_bytes() * 3 < without.total_bytes());
    // The release's own index and pack are the same as without patches: an installer
    // that ignores the patch targets sees exactly the release it always saw.
    let ours = std::fs::read(&with.whole[0].path).unwrap();
    let theirs = std::fs::read(&without.whole[0].path).unwrap();
    assert_eq!(ours, theirs);
    // A full install needs no patch.
    let full = objects_needed(&fx.repo, "rpi4", "1.1.0", None).unwrap();
    assert_eq!(full.chunks_patched, 0);
    assert_eq!(full.whole.len(), 1);
}

#[test]
fn two_bases_give_two_patch_sets_and_a_device_on_each_uses_its_own() {
    let fx = Fixture::new();
    let v1 = text(2 << 20, 2);
    let v2 = shifted(&v1, 3, 30);
    let v3 = shifted(&v2, 3, 30);
    fx.add("1.0.0", &fx.image("a", &v1), &[], ChunkParams::DEFAULT)
        .unwrap();
    fx.add("1.1.0", &fx.image("b", &v2), &[], ChunkParams::DEFAULT)
        .unwrap();
    let added = fx
        .add(
            "1.2.0",
            &fx.image("c", &v3),
            &["1.0.0".into(), "1.1.0".into()],
            ChunkParams::DEFAULT,
        )
        .unwrap();
    assert_eq!(added.patches.len(), 2);
    for base in ["1.0.0", "1.1.0"] {
        let need = objects_needed(&fx.repo, "rpi4", "1.2.0", Some(base)).unwrap();
        assert!(need.chunks_patched > 0, "{base}");
        assert!(need
            .patches
            .iter()
            .all(|r| r.target.ends_with(&format!("from-{base}.patch.pack"))));
    }
}

#[test]
fn bad_bases_are_refused_before_anything_is_written() {
    let fx = Fixture::new();
    let v1 = text(300_000, 3);
    let img = fx.image("a", &v1);
    fx.add("1.0.0", &img, &[], ChunkParams::DEFAULT).unwrap();
    let before = walk(&fx.repo.dir);
    let other = ChunkParams {
        min: 2048,
        avg: 8192,
        max: 32768,
    };
    for (from, version, params, what) in [
        (
            "2.0.0",
            "1.5.0",
            ChunkParams::DEFAULT,
            "a base must be an earlier release",
        ),
        ("0.9.0", "1.5.0", ChunkParams::DEFAULT, "no such release"),
        ("1.0.0", "1.5.0", other, "other chunk sizes"),
    ] {
        let err = fx.add(version, &img, &[from.into()], params).unwrap_err();
        assert!(
            matches!(&err, ReleaseError::BadDeltaBase { .. }) && err.to_string().contains(what),
            "{err}"
        );
        assert_eq!(walk(&fx.repo.dir), before, "{what}");
    }
    let err = fx
        .add("1.5.0", &img, &["x".into()], ChunkParams::DEFAULT)
        .unwrap_err();
    assert!(matches!(err, ReleaseError::BadVersion { .. }), "{err}");
    // Plain `add_image` still works as before.
    let add = AddImage {
        board: "rpi4",
        version: "1.6.0",
        channel: "stable",
        image: &img,
        params: ChunkParams::DEFAULT,
        level: 3,
    };
    add_image(
        &fx.keys,
        &fx.repo,
        &add,
        &Expiries::default(),
        SystemTime::now(),
    )
    .unwrap();
}

fn walk(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((p.clone(), std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn a_patch_set_that_saves_less_than_its_metadata_costs_is_not_published() {
    let fx = Fixture::new();
    // One small chunk of text: compressed alone it is a few hundred bytes, so a patch
    // saves less than the set's entries in the targets metadata cost every device.
    let v1 = text(1500, 5);
    let mut v2 = v1.clone();
    v2[700] ^= 0x20;
    fx.add("1.0.0", &fx.image("a", &v1), &[], ChunkParams::DEFAULT)
        .unwrap();
    let added = fx
        .add(
            "1.1.0",
            &fx.image("b", &v2),
            &["1.0.0".into()],
            ChunkParams::DEFAULT,
        )
        .unwrap();
    assert!(added.patches.is_empty(), "{:?}", added.patches);
    assert!(walk(&fx.repo.dir)
        .iter()
        .all(|(p, _)| !p.to_string_lossy().contains(".patch.")));
}
