//! Patched chunks on the device: a device whose seed holds a patch set's base fetches
//! patches instead of changed chunks; a device without the base, a tampered patch, a
//! patch made against other base bytes, and a patch whose result is another chunk all
//! end in the full chunk, never in unverified bytes on the slot; an installer that
//! ignores patches (as those built before them) installs the same release from full
//! chunks; any mix of reused, patched and fetched chunks reassembles the exact image.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::server::{Faults, TestServer};
use common::{image, TestRepo};
use proptest::prelude::*;
use sha2::{Digest, Sha256};
use skerry_chunks::PatchIndex;
use skerry_installer::install::NoProgress;
use skerry_installer::transport::HttpTransport;
use skerry_installer::{install, install_with, InstallReport, NoBootState, PatchUse, RetryPolicy};
use skerry_tuf::image::consistent_path;

/// `base` with `inserts` insertions of 200 bytes (shifting what follows) and `edits`
/// 4-byte edits spread over the image.
fn shifted(base: &[u8], inserts: usize, edits: usize, seed: u64) -> Vec<u8> {
    let mut v = base.to_vec();
    for k in 0..edits {
        let at = ((k as u64 * 7919 * 131 + seed * 104_729) % (v.len() as u64 - 8)) as usize;
        v[at..at + 4].copy_from_slice(&(k as u32 ^ seed as u32).to_le_bytes());
    }
    for k in (0..inserts).rev() {
        let at = (k + 1) * v.len() / (inserts + 1);
        let extra: Vec<u8> = (0..200).map(|i| b"insert-"[(i + k) % 7]).collect();
        v.splice(at..at, extra);
    }
    v
}

struct Setup {
    repo: TestRepo,
    v1: Vec<u8>,
    v2: Vec<u8>,
}

fn setup() -> Setup {
    let repo = TestRepo::new();
    let v1 = image(3 << 20, 11);
    let v2 = shifted(&v1, 6, 60, 1);
    repo.add("rpi4", "1.0.0", &v1);
    repo.add_delta("rpi4", "1.1.0", &v2, &["1.0.0"]);
    Setup { repo, v1, v2 }
}

fn install_from(s: &Setup, seed: &[u8], tag: &str, patch_use: PatchUse) -> InstallReport {
    let seed_path = s.repo.path().join(format!("seed-{tag}"));
    std::fs::write(&seed_path, seed).unwrap();
    let slot = s.repo.path().join(format!("slot-{tag}"));
    let mut opts = s.repo.options(s.repo.file_transport(), "rpi4", &slot);
    opts.seed = Some(seed_path);
    opts.state_dir = s.repo.path().join(format!("state-{tag}"));
    let report = install_with(&opts, patch_use, &mut NoBootState, &NoProgress).unwrap();
    assert!(
        std::fs::read(&slot).unwrap() == s.v2,
        "{tag}: the slot is not the image"
    );
    report
}

#[test]
fn a_device_on_the_base_fetches_patches_and_an_old_installer_full_chunks() {
    let s = setup();
    let patched = install_from(&s, &s.v1, "patched", PatchUse::WhenBaseHeld);
    let old = install_from(&s, &s.v1, "old", PatchUse::Ignore);
    assert_eq!(patched.patch_base.as_deref(), Some("1.0.0"));
    assert!(patched.chunks_patched > 0);
    assert_eq!(patched.patch_fallbacks, 0);
    assert_eq!(old.chunks_patched, 0);
    assert_eq!(old.patch_base, None);
    assert_eq!(
        old.chunks_fetched,
        patched.chunks_fetched + patched.chunks_patched
    );
    eprintln!(
        "3 MiB, 6 inserts + 60 edits: {} bytes fetched with patches ({} chunks patched), \
         {} without ({} chunks fetched)",
        patched.bytes_fetched, patched.chunks_patched, old.bytes_fetched, old.chunks_fetched
    );
    assert!(patched.bytes_fetched * 2 < old.bytes_fetched);
    // The default entry point uses patches.
    let slot = s.repo.path().join("slot-default");
    let seed = s.repo.path().join("seed-patched");
    let mut opts = s.repo.options(s.repo.file_transport(), "rpi4", &slot);
    opts.seed = Some(seed);
    opts.state_dir = s.repo.path().join("state-default");
    let report = install(&opts, &mut NoBootState, &NoProgress).unwrap();
    assert_eq!(report.chunks_patched, patched.chunks_patched);
}

#[test]
fn a_device_without_the_base_fetches_full_chunks() {
    let s = setup();
    // Its seed is the base with one byte changed: most chunks are reusable, but it
    // does not hold the base image, so no patch is tried.
    let mut other = s.v1.clone();
    other[100] ^= 1;
    let r = install_from(&s, &other, "lacks", PatchUse::WhenBaseHeld);
    assert_eq!(r.chunks_patched, 0);
    assert_eq!(r.patch_base, None);
    assert!(r.chunks_reused > 0);
}

#[test]
fn a_tampered_patch_gives_way_to_its_full_chunk() {
    let s = setup();
    let pack = s.repo.find(".from-1.0.0.patch.pack");
    let mut bytes = std::fs::read(&pack).unwrap();
    for at in (0..bytes.len()).step_by(97) {
        bytes[at] ^= 0x10;
    }
    std::fs::write(&pack, bytes).unwrap();
    let r = install_from(&s, &s.v1, "tampered", PatchUse::WhenBaseHeld);
    assert!(r.patch_fallbacks > 0);
    assert!(r.patch_fallbacks <= r.chunks_patched);
}

#[test]
fn a_tampered_patch_index_is_refused_and_full_chunks_are_fetched() {
    let s = setup();
    let index = s.repo.find(".from-1.0.0.patch.idx");
    let mut bytes = std::fs::read(&index).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&index, bytes).unwrap();
    let r = install_from(&s, &s.v1, "bad-index", PatchUse::WhenBaseHeld);
    assert_eq!(r.chunks_patched, 0);
    assert_eq!(r.patch_base, None);
}

#[test]
fn a_patch_made_against_other_base_bytes_gives_way_to_its_full_chunk() {
    let s = setup();
    // A signer (key stolen, or a buggy tool) points every patch at another run of the
    // base: the run is in the seed, but its bytes are not the ones the patch was made
    // against.
    let moved = forge_patches(&s.repo, |index| {
        let n = index.base_chunk_count;
        for e in &mut index.entries {
            e.base_first = (e.base_first + 40) % (n - 8);
        }
    });
    assert!(moved > 0);
    let r = install_from(&s, &s.v1, "wrong-base", PatchUse::WhenBaseHeld);
    assert!(r.patch_fallbacks > 0, "{r:?}");
}

#[test]
fn a_patch_that_gives_another_chunk_gives_way_to_the_full_chunk() {
    let s = setup();
    let lens = chunk_lens(&s.repo, "1.1.0");
    // Entries of chunks of the same length swap patches and bases: each decodes to the
    // right length, but to the other chunk, so only the chunk's name tells.
    let mut swapped = 0;
    forge_patches(&s.repo, |index| {
        let originals = index.entries.clone();
        let mut rebuilt = PatchIndex {
            chunk_count: index.chunk_count,
            base_chunk_count: index.base_chunk_count,
            ..PatchIndex::default()
        };
        let mut pack = Vec::new();
        let old = std::fs::read(s.repo.find(".from-1.0.0.patch.pack")).unwrap();
        for (i, e) in originals.iter().enumerate() {
            let len = lens[e.chunk as usize];
            let other = originals
                .iter()
                .enumerate()
                .find(|&(j, o)| j != i && lens[o.chunk as usize] == len)
                .map(|(_, o)| o);
            let from = match other {
                Some(o) => {
                    swapped += 1;
                    o
                }
                None => e,
            };
            let at = from.patch_offset as usize;
            pack.extend_from_slice(&old[at..at + from.patch_len as usize]);
            rebuilt.push(e.chunk, from.patch_len, from.base_first, from.base_count);
        }
        *index = rebuilt;
        pack
    });
    assert!(swapped > 1, "no two patched chunks of the same length");
    let r = install_from(&s, &s.v1, "other-chunk", PatchUse::WhenBaseHeld);
    assert_eq!(r.patch_fallbacks, swapped, "{r:?}");
}

fn over_http(s: &Setup, faults: Faults, tag: &str) -> InstallReport {
    let server = TestServer::start(s.repo.repo.dir.clone(), faults);
    let seed_path = s.repo.path().join(format!("seed-{tag}"));
    std::fs::write(&seed_path, &s.v1).unwrap();
    let slot = s.repo.path().join(format!("slot-{tag}"));
    let transport = Arc::new(HttpTransport::new(
        &server.url(),
        Duration::from_millis(250),
    ));
    let mut opts = s.repo.options(transport, "rpi4", &slot);
    opts.seed = Some(seed_path);
    opts.state_dir = s.repo.path().join(format!("state-{tag}"));
    opts.retry = RetryPolicy {
        attempts: 12,
        first_backoff: Duration::from_millis(2),
        max_backoff: Duration::from_millis(20),
    };
    let report = install(&opts, &mut NoBootState, &NoProgress)
        .unwrap_or_else(|e| panic!("{tag}: {e}: {:?}", std::error::Error::source(&e)));
    assert!(
        std::fs::read(&slot).unwrap() == s.v2,
        "{tag}: the slot is not the image"
    );
    report
}

#[test]
fn cut_connections_and_damaged_patches_over_http_still_give_the_exact_image() {
    let s = setup();
    for seed in 1..=3u64 {
        let faults = Faults {
            cut_percent: 40,
            // Patch packs end in `.pack` too: a flipped byte in a patch fails its hash
            // and the full chunk is fetched.
            corrupt_pack_percent: 20,
            seed,
            ..Faults::default()
        };
        let r = over_http(&s, faults, &format!("faults-{seed}"));
        assert!(r.chunks_patched > 0, "{r:?}");
    }
}

#[test]
fn a_server_ignoring_ranges_gets_no_patch_requests() {
    let s = setup();
    let faults = Faults {
        ignore_ranges: true,
        ..Faults::default()
    };
    let r = over_http(&s, faults, "no-ranges");
    assert_eq!(r.chunks_patched, 0);
}

#[test]
fn a_patched_install_cut_short_resumes_on_the_next_run() {
    let s = setup();
    let seed_path = s.repo.path().join("seed-resume");
    std::fs::write(&seed_path, &s.v1).unwrap();
    let slot = s.repo.path().join("slot-resume");
    let attempt = |faults: Faults| {
        let server = TestServer::start(s.repo.repo.dir.clone(), faults);
        let transport = Arc::new(HttpTransport::new(
            &server.url(),
            Duration::from_millis(250),
        ));
        let mut opts = s.repo.options(transport, "rpi4", &slot);
        opts.seed = Some(seed_path.clone());
        opts.state_dir = s.repo.path().join("state-resume");
        install(&opts, &mut NoBootState, &NoProgress)
    };
    // Both packs (chunks and patches) end early on the first server: the install gives up.
    let cut = Faults {
        truncate_packs_at: Some(1500),
        ..Faults::default()
    };
    assert!(attempt(cut).is_err());
    let r = attempt(Faults::default()).unwrap();
    assert!(r.resumed);
    assert!(r.chunks_patched > 0, "{r:?}");
    assert!(std::fs::read(&slot).unwrap() == s.v2);
}

/// The length of every chunk of a published release, in image order.
fn chunk_lens(repo: &TestRepo, version: &str) -> Vec<u32> {
    let current = repo.repo.current().unwrap();
    let r = skerry_release::published::PublishedRelease::read(
        &repo.repo,
        &current.targets.signed,
        "rpi4",
        version,
    )
    .unwrap();
    r.entries.iter().map(|e| e.len).collect()
}

/// Lets `edit` change the patch index of 1.1.0 from 1.0.0 (and return a new patch pack
/// to publish with it, or nothing to keep the old one), then re-signs targets, snapshot
/// and timestamp with the repository's own keys, as a publisher with every key would.
/// Returns the number of entries.
fn forge_patches<P: PackEdit>(repo: &TestRepo, edit: impl FnOnce(&mut PatchIndex) -> P) -> usize {
    common::resign_targets(repo, |targets| {
        let name = "rpi4/1.1.0/from-1.0.0.patch.idx";
        let entry = targets.targets.get_mut(name).unwrap();
        let old_path = repo
            .repo
            .targets_dir()
            .join(consistent_path(name, &entry.hashes["sha256"]));
        let mut index = PatchIndex::decode(&std::fs::read(&old_path).unwrap()).unwrap();
        if let Some(pack) = edit(&mut index).new_pack() {
            let pack_name = "rpi4/1.1.0/from-1.0.0.patch.pack";
            let sha = hex::encode(Sha256::digest(&pack));
            let file = targets.targets.get_mut(pack_name).unwrap();
            file.length = pack.len() as u64;
            file.hashes.insert("sha256".into(), sha.clone());
            std::fs::write(
                repo.repo
                    .targets_dir()
                    .join(consistent_path(pack_name, &sha)),
                &pack,
            )
            .unwrap();
        }
        let entry = targets.targets.get_mut(name).unwrap();
        let bytes = index.encode();
        let sha = hex::encode(Sha256::digest(&bytes));
        entry.length = bytes.len() as u64;
        entry.hashes.insert("sha256".into(), sha.clone());
        std::fs::write(
            repo.repo.targets_dir().join(consistent_path(name, &sha)),
            &bytes,
        )
        .unwrap();
        index.entries.len()
    })
}

/// What an edit of the patch index returns: nothing, or a new patch pack.
trait PackEdit {
    fn new_pack(self) -> Option<Vec<u8>>;
}

impl PackEdit for () {
    fn new_pack(self) -> Option<Vec<u8>> {
        None
    }
}

impl PackEdit for Vec<u8> {
    fn new_pack(self) -> Option<Vec<u8>> {
        Some(self)
    }
}

/// One change to the image.
#[derive(Debug, Clone)]
enum Change {
    /// A small edit (patchable).
    Edit { at: usize, len: usize },
    /// An insertion of fresh noise (fetched whole: no base holds it).
    Noise { at: usize, len: usize },
    /// A deletion (moves what follows).
    Cut { at: usize, len: usize },
}

fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        (0usize..600_000, 1usize..64).prop_map(|(at, len)| Change::Edit { at, len }),
        (0usize..600_000, 1usize..40_000).prop_map(|(at, len)| Change::Noise { at, len }),
        (0usize..600_000, 1usize..3000).prop_map(|(at, len)| Change::Cut { at, len }),
    ]
}

fn apply(base: &[u8], changes: &[Change], seed: u64) -> Vec<u8> {
    let mut v = base.to_vec();
    let mut s = seed | 1;
    for c in changes {
        let len = v.len();
        match *c {
            Change::Edit { at, len: n } => {
                let at = at % (len - n);
                for b in &mut v[at..at + n] {
                    *b = b.wrapping_add(1);
                }
            }
            Change::Noise { at, len: n } => {
                let noise: Vec<u8> = (0..n)
                    .map(|_| {
                        s ^= s << 13;
                        s ^= s >> 7;
                        s ^= s << 17;
                        s as u8
                    })
                    .collect();
                let at = at % len;
                v.splice(at..at, noise);
            }
            Change::Cut { at, len: n } => {
                let at = at % (len - n);
                v.drain(at..at + n);
            }
        }
    }
    v
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, ..ProptestConfig::default() })]

    /// Any mix of reused, patched and fetched chunks reassembles the exact image (the
    /// install reads the slot back against the signed BLAKE3, and the test compares).
    #[test]
    fn any_mix_of_reused_patched_and_fetched_chunks_is_the_exact_image(
        changes in proptest::collection::vec(change(), 1..12),
        seed in 1u64..1000,
    ) {
        let repo = TestRepo::new();
        let v1 = image(700_000, seed);
        let v2 = apply(&v1, &changes, seed);
        repo.add("rpi4", "1.0.0", &v1);
        repo.add_delta("rpi4", "1.1.0", &v2, &["1.0.0"]);
        let s = Setup { repo, v1, v2 };
        let r = install_from(&s, &s.v1, "prop", PatchUse::WhenBaseHeld);
        prop_assert_eq!(r.patch_fallbacks, 0);
    }
}
