//! The tamper matrix: a byte flipped in every chunk and in the index, every metadata
//! field changed, signatures dropped, old metadata replayed, expired metadata, a wrong
//! key. Each is refused with a typed error, and a refused install never reports success.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use common::{image, TestRepo};
use serde_json::Value;
use skerry_chunks::IndexHead;
use skerry_installer::install::NoProgress;
use skerry_installer::NoBootState;
use skerry_installer::{install, InstallError, InstallReport};

/// Installs `board` into a fresh slot with a fresh device state.
fn attempt(repo: &TestRepo, tag: &str) -> Result<InstallReport, InstallError> {
    let slot = repo.path().join(format!("slot-{tag}"));
    let _ = std::fs::remove_file(&slot);
    let mut opts = repo.options(repo.file_transport(), "rpi4", &slot);
    opts.state_dir = repo.path().join(format!("state-{tag}"));
    let _ = std::fs::remove_dir_all(&opts.state_dir);
    install(&opts, &mut NoBootState, &NoProgress)
}

/// Runs `check` with `path`'s bytes replaced by `bytes`, then restores them.
fn with_file<T>(path: &Path, bytes: &[u8], check: impl FnOnce() -> T) -> T {
    let original = std::fs::read(path).unwrap();
    std::fs::write(path, bytes).unwrap();
    let out = check();
    std::fs::write(path, original).unwrap();
    out
}

fn small_repo() -> TestRepo {
    let repo = TestRepo::new();
    repo.add("rpi4", "1.0.0", &image(400_000, 11));
    attempt(&repo, "sanity").expect("the untampered repository installs");
    repo
}

fn head_of(idx: &Path) -> (IndexHead, Vec<u8>) {
    let bytes = std::fs::read(idx).unwrap();
    let pages = u32::from_le_bytes(bytes[60..64].try_into().unwrap()) as usize;
    (IndexHead::decode(&bytes[..80 + 96 * pages]).unwrap(), bytes)
}

#[test]
fn a_flipped_byte_in_any_chunk_is_refused() {
    let repo = small_repo();
    let pack = repo.find(".image.pack");
    let (head, idx) = head_of(&repo.find(".image.idx"));
    let original = std::fs::read(&pack).unwrap();
    let mut chunks = Vec::new();
    for (i, page) in head.pages.iter().enumerate() {
        let at = page.body_offset as usize;
        let entries = head
            .decode_page(i, &idx[at..at + page.body_len as usize])
            .unwrap();
        let mut offset = page.pack_offset;
        for e in entries.iter().filter(|e| e.comp_len > 0) {
            chunks.push((offset, e.comp_len));
            offset += u64::from(e.comp_len);
        }
    }
    assert!(
        chunks.len() >= 10,
        "too few chunks to be a matrix: {}",
        chunks.len()
    );
    for (n, (offset, len)) in chunks.into_iter().enumerate() {
        let mut bad = original.clone();
        bad[(offset + u64::from(len) / 2) as usize] ^= 0x10;
        let err = with_file(&pack, &bad, || attempt(&repo, "chunk")).unwrap_err();
        assert!(
            matches!(
                err,
                InstallError::TamperedChunk { .. } | InstallError::BadChunk { .. }
            ),
            "chunk {n}: {err}"
        );
    }
}

#[test]
fn a_flipped_byte_anywhere_in_the_index_is_refused() {
    let repo = small_repo();
    let idx_path = repo.find(".image.idx");
    let (head, original) = head_of(&idx_path);
    let head_len = head.encoded_len();
    // One byte of every header field, of every page-table field, and of every entry
    // (hash, length and compressed length in turn) of every page.
    let header_fields = [0usize, 8, 16, 48, 52, 56, 60, 64, 72];
    let page_fields = [0usize, 32, 64, 72, 76, 80, 88];
    let entry_fields = [0usize, 16, 20];
    let positions: Vec<usize> = header_fields
        .into_iter()
        .chain((0..head.pages.len()).flat_map(|p| page_fields.map(|f| 80 + 96 * p + f)))
        .chain(
            (head_len..original.len())
                .step_by(skerry_chunks::ENTRY_LEN)
                .enumerate()
                .map(|(i, at)| at + entry_fields[i % 3]),
        )
        .collect();
    for at in positions {
        let mut bad = original.clone();
        bad[at] ^= 0x01;
        let err = with_file(&idx_path, &bad, || attempt(&repo, "index")).unwrap_err();
        let expected = if at < head_len {
            matches!(err, InstallError::HashMismatch { .. })
        } else {
            matches!(err, InstallError::Index { .. })
        };
        assert!(expected, "byte {at}: {err}");
    }
}

/// Every leaf of a JSON document, as a path of keys and indexes.
fn leaves(v: &Value, path: &mut Vec<Value>, out: &mut Vec<Vec<Value>>) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                path.push(Value::String(k.clone()));
                leaves(child, path, out);
                path.pop();
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                path.push(Value::from(i));
                leaves(child, path, out);
                path.pop();
            }
        }
        _ => out.push(path.clone()),
    }
}

fn mutate(doc: &Value, path: &[Value]) -> Value {
    let mut doc = doc.clone();
    let mut cur = &mut doc;
    for key in path {
        cur = match key {
            Value::String(k) => cur.get_mut(k.as_str()).unwrap(),
            _ => cur.get_mut(key.as_u64().unwrap() as usize).unwrap(),
        };
    }
    *cur = match cur.take() {
        Value::String(s) if s.ends_with('0') => Value::String(format!("{}1", &s[..s.len() - 1])),
        Value::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit()) => {
            Value::String(format!("{}0", &s[..s.len() - 1]))
        }
        Value::String(s) => Value::String(format!("{s}x")),
        Value::Number(n) => Value::from(n.as_u64().unwrap_or(0) + 1),
        Value::Bool(b) => Value::Bool(!b),
        other => other,
    };
    doc
}

fn metadata_files(repo: &TestRepo) -> Vec<PathBuf> {
    let md = repo.repo.metadata_dir();
    let current = skerry_release::Repository::current(&repo.repo).unwrap();
    vec![
        md.join("timestamp.json"),
        md.join(format!("{}.snapshot.json", current.snapshot.signed.version)),
        md.join(format!("{}.targets.json", current.targets.signed.version)),
    ]
}

#[test]
fn every_metadata_field_changed_is_refused() {
    let repo = small_repo();
    let mut tried = 0;
    for file in metadata_files(&repo) {
        let doc: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        let mut paths = Vec::new();
        leaves(&doc, &mut Vec::new(), &mut paths);
        for path in paths {
            let bad = serde_json::to_vec(&mutate(&doc, &path)).unwrap();
            let result = with_file(&file, &bad, || attempt(&repo, "meta"));
            assert!(
                matches!(result, Err(InstallError::Metadata { .. })),
                "{} {:?}: {:?}",
                file.display(),
                path,
                result.map(|r| r.version)
            );
            tried += 1;
        }
    }
    assert!(tried > 30, "only {tried} fields");
}

#[test]
fn dropped_signatures_are_refused() {
    let repo = small_repo();
    for file in metadata_files(&repo) {
        let mut doc: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        doc["signatures"] = Value::Array(vec![]);
        let bad = serde_json::to_vec(&doc).unwrap();
        let err = with_file(&file, &bad, || attempt(&repo, "unsigned")).unwrap_err();
        let text = format!("{err}: {}", std::error::Error::source(&err).unwrap());
        // The snapshot's length is signed in the timestamp, so its check fires first.
        assert!(
            text.contains("0 valid signature") || text.contains("signed length"),
            "{}: {text}",
            file.display()
        );
    }
}

#[test]
fn replayed_old_metadata_is_refused() {
    let repo = TestRepo::new();
    repo.add("rpi4", "1.0.0", &image(100_000, 12));
    let ts = repo.repo.metadata_dir().join("timestamp.json");
    let old_ts = std::fs::read(&ts).unwrap();
    repo.add("rpi4", "1.1.0", &image(100_000, 13));
    let slot = repo.path().join("slot");
    let opts = repo.options(repo.file_transport(), "rpi4", &slot);
    assert_eq!(
        install(&opts, &mut NoBootState, &NoProgress)
            .unwrap()
            .version,
        "1.1.0"
    );
    // The device has seen timestamp v3; an attacker serves the old v2 again.
    let err = with_file(&ts, &old_ts, || {
        install(&opts, &mut NoBootState, &NoProgress)
    })
    .unwrap_err();
    let text = format!("{}", std::error::Error::source(&err).unwrap());
    assert!(text.contains("older than the trusted version"), "{text}");
}

#[test]
fn expired_metadata_is_refused_even_with_the_clock_set_back() {
    let repo = TestRepo::new();
    let month_ago = SystemTime::now() - Duration::from_secs(30 * 86_400);
    repo.add_at("rpi4", "1.0.0", &image(100_000, 14), month_ago);
    let slot = repo.path().join("slot");
    let mut opts = repo.options(repo.file_transport(), "rpi4", &slot);
    let err = install(&opts, &mut NoBootState, &NoProgress).unwrap_err();
    let text = format!("{}", std::error::Error::source(&err).unwrap());
    assert!(text.contains("expired"), "{text}");

    // A device whose clock says "a month ago" accepts it once...
    opts.clock = month_ago + Duration::from_secs(3600);
    opts.state_dir = repo.path().join("state-clock");
    install(&opts, &mut NoBootState, &NoProgress).unwrap();
    // ...but once it has seen today, setting the clock back does not revive it.
    let state_file = repo.repo_state(&opts).join("state.json");
    let mut state: Value = serde_json::from_slice(&std::fs::read(&state_file).unwrap()).unwrap();
    let today = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    state["time_floor"] = Value::from(today);
    std::fs::write(&state_file, serde_json::to_vec(&state).unwrap()).unwrap();
    let err = install(&opts, &mut NoBootState, &NoProgress).unwrap_err();
    assert!(format!("{}", std::error::Error::source(&err).unwrap()).contains("expired"));
}

#[test]
fn metadata_signed_by_a_wrong_key_is_refused() {
    let repo = small_repo();
    let other = TestRepo::new();
    let slot = repo.path().join("slot");
    let mut opts = repo.options(repo.file_transport(), "rpi4", &slot);
    opts.trusted_root = other.root_bytes();
    opts.state_dir = repo.path().join("state-wrong-key");
    let err = install(&opts, &mut NoBootState, &NoProgress).unwrap_err();
    let text = format!("{}", std::error::Error::source(&err).unwrap());
    assert!(text.contains("valid signature"), "{text}");
    assert!(!slot.exists() || std::fs::metadata(&slot).unwrap().len() == 0);
}

#[test]
fn root_rotation_is_followed_and_a_rotation_without_old_signatures_is_refused() {
    let repo = TestRepo::new();
    repo.add("rpi4", "1.0.0", &image(100_000, 15));
    let new_keys = skerry_release::KeySet::generate(&repo.path().join("keys2"), 2).unwrap();
    skerry_release::rotate_root(
        &repo.keys,
        &new_keys,
        &repo.repo,
        2,
        &skerry_release::Expiries::default(),
        SystemTime::now(),
    )
    .unwrap();
    let r = attempt(&repo, "rotated").unwrap();
    assert_eq!(r.version, "1.0.0");
    let saved: Value = serde_json::from_slice(
        &std::fs::read(
            skerry_installer::state::repository_dir(
                &repo.path().join("state-rotated"),
                &repo.root_bytes(),
            )
            .unwrap()
            .join("root.json"),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(saved["signed"]["version"], 2);

    // 2.root.json signed by the new keys only, or by one new key only, is refused.
    let root2 = repo.repo.metadata_dir().join("2.root.json");
    let doc: Value = serde_json::from_slice(&std::fs::read(&root2).unwrap()).unwrap();
    let old_id = repo.keys.root[0].key_id().unwrap();
    for keep in [
        Box::new(|id: &str| id != old_id) as Box<dyn Fn(&str) -> bool>,
        Box::new(|id: &str| id == old_id),
    ] {
        let mut bad = doc.clone();
        let sigs: Vec<Value> = bad["signatures"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| keep(s["keyid"].as_str().unwrap()))
            .cloned()
            .collect();
        bad["signatures"] = Value::Array(sigs);
        let err = with_file(&root2, &serde_json::to_vec(&bad).unwrap(), || {
            attempt(&repo, "bad-rotation")
        })
        .unwrap_err();
        assert!(matches!(err, InstallError::Metadata { .. }), "{err}");
    }
}
