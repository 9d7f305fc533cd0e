//! The corpus replay shared by the release crates' `fuzz_corpus` tests.
//!
//! Every corpus file is named by its expected outcome: `accept-NAME` or `reject-NAME`.
//! Inputs a fuzz run finds land unnamed (libFuzzer names them by hash); to keep them,
//! run the test once with `SKERRY_FUZZ_CLASSIFY=1`, which renames each unnamed file by
//! the outcome it has now, then review and commit them. Without it an unnamed file fails
//! the test, so no input is kept without a stated expectation.

use std::fmt::Debug;
use std::path::PathBuf;

pub fn corpus_dir(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target)
}

/// Requires every seed in the corpus with the same bytes (or writes them when
/// `SKERRY_FUZZ_WRITE_SEEDS=1`).
pub fn seeds_are_in_corpus(target: &str, seeds: Vec<(String, Vec<u8>)>) {
    let dir = corpus_dir(target);
    let write = std::env::var_os("SKERRY_FUZZ_WRITE_SEEDS").is_some();
    for (name, bytes) in seeds {
        let path = dir.join(&name);
        if write {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&path, &bytes).unwrap();
        }
        let found = std::fs::read(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e}; write the seeds with SKERRY_FUZZ_WRITE_SEEDS=1",
                path.display()
            )
        });
        assert!(found == bytes, "{} differs from its seed", path.display());
    }
}

/// Runs every corpus file through `entry` and checks its named outcome.
pub fn replay<E: Debug>(target: &str, entry: impl Fn(&[u8]) -> Result<(), E>) {
    let dir = corpus_dir(target);
    let classify = std::env::var_os("SKERRY_FUZZ_CLASSIFY").is_some();
    let (mut accepted, mut rejected) = (0, 0);
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    paths.sort();
    for path in paths {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let data = std::fs::read(&path).unwrap();
        let result = entry(&data);
        let expect_ok = if let Some(_rest) = name.strip_prefix("accept-") {
            true
        } else if name.starts_with("reject-") {
            false
        } else if classify {
            let prefix = if result.is_ok() { "accept" } else { "reject" };
            std::fs::rename(&path, dir.join(format!("{prefix}-found-{name}"))).unwrap();
            result.is_ok()
        } else {
            panic!(
                "{target}/{name} is not named accept-* or reject-*; name it, or run with SKERRY_FUZZ_CLASSIFY=1"
            );
        };
        match (&result, expect_ok) {
            (Ok(()), true) => accepted += 1,
            (Err(_), false) => rejected += 1,
            (Ok(()), false) => panic!("{target}/{name} was accepted"),
            (Err(e), true) => panic!("{target}/{name} was refused: {e:?}"),
        }
    }
    assert!(accepted >= 1, "{target}: no accepted input in the corpus");
    assert!(
        rejected >= 3,
        "{target}: only {rejected} refused inputs in the corpus"
    );
}
