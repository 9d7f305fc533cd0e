//! Replays every fuzz target's committed corpus through the same entry point the fuzzer
//! calls, so crashes found once stay fixed. Files named `invalid-*` must be rejected with
//! an error; nothing may panic.

use std::path::Path;

use skerry_boot_state::{gpt, grub, tryboot, uboot, BootState, StoreError};

type Entry = fn(&[u8]) -> Result<BootState, StoreError>;

fn replay(target: &str, entry: Entry) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files = 0;
    let mut accepted = 0;
    for file in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = file.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let result = entry(&data);
        if name.starts_with("invalid-") {
            assert!(result.is_err(), "{target}/{name} was accepted");
        }
        if let Ok(state) = result {
            assert!(
                state.check().is_ok(),
                "{target}/{name} loaded an invalid state"
            );
            accepted += 1;
        }
        files += 1;
    }
    assert!(files >= 3, "{target}: corpus has only {files} files");
    assert!(
        accepted >= 1,
        "{target}: no corpus file parses as a valid state"
    );
}

#[test]
fn uboot_env_corpus() {
    replay("uboot_env", uboot::fuzz_parse);
}

#[test]
fn grub_env_corpus() {
    replay("grub_env", grub::fuzz_parse);
}

#[test]
fn gpt_corpus() {
    replay("gpt", gpt::fuzz_parse);
}

#[test]
fn autoboot_txt_corpus() {
    replay("autoboot_txt", tryboot::fuzz_parse);
}
