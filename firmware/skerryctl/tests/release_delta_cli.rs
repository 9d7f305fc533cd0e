//! `skerryctl release add --delta-from`: publishes patch sets against earlier releases
//! and reports them; a base that is not an earlier release of the board is refused
//! before anything is written.

mod support {
    pub mod cli;
    pub mod refused;
    pub mod release;
}

use support::cli::ok;
use support::refused::fails;
use support::release::{add, init, keygen};

/// Text-like bytes with small edits every `every` bytes (seeded).
fn image(len: usize, every: usize, seed: u8) -> Vec<u8> {
    let mut s = 0x9e37_79b9u64;
    let mut v: Vec<u8> = (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            b"usr lib share doc\n"[(s % 18) as usize]
        })
        .collect();
    for at in (every / 2..len).step_by(every) {
        v[at] = seed;
    }
    v
}

#[test]
fn delta_from_publishes_and_reports_patch_sets_and_refuses_bad_bases() {
    let tmp = tempfile::tempdir().unwrap();
    let (keys, repo) = (tmp.path().join("k"), tmp.path().join("r"));
    ok(&keygen(&keys));
    ok(&init(&keys, &repo));
    let (v1, v2) = (tmp.path().join("v1"), tmp.path().join("v2"));
    std::fs::write(&v1, image(1 << 20, 50_000, b'a')).unwrap();
    std::fs::write(&v2, image(1 << 20, 50_000, b'b')).unwrap();
    ok(&add(&keys, &repo, "rpi4", "1.0.0", &v1));
    let mut args = add(&keys, &repo, "rpi4", "1.1.0", &v2).to_vec();
    args.extend(["--delta-from", "1.0.0", "--output", "json"]);
    let out: serde_json::Value = serde_json::from_str(&ok(&args)).unwrap();
    let patches = out["patches"].as_array().unwrap();
    assert_eq!(patches.len(), 1, "{out}");
    assert_eq!(patches[0]["base_version"], "1.0.0");
    let patched = patches[0]["patched_chunks"].as_u64().unwrap();
    assert!(patched > 0, "{out}");
    assert!(patches[0]["patch_bytes"].as_u64() < patches[0]["replaced_bytes"].as_u64());

    let mut later = add(&keys, &repo, "rpi4", "0.9.0", &v2).to_vec();
    later.extend(["--delta-from", "1.0.0"]);
    fails(&later, "a base must be an earlier release");
    let mut unknown = add(&keys, &repo, "rpi4", "1.2.0", &v2).to_vec();
    unknown.extend(["--delta-from", "1.0.0,0.5.0"]);
    fails(&unknown, "no such release of this board");
    assert!(!repo.join("targets/rpi4/1.2.0").exists());
}
