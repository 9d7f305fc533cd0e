//! Interop with the real `grub-editenv` (grub-common), both directions: blocks it wrote
//! (RAUC-style variables, escapes) load, and blocks we wrote list back unchanged.

use std::path::{Path, PathBuf};
use std::process::Command;

use skerry_boot_state::grub::GrubEnvStore;
use skerry_boot_state::{BootState, BootStore, FileMedium, SlotName, SlotStatus};

mod support {
    pub mod tools;
}

use support::tools::need;

fn a() -> SlotName {
    SlotName::new("A").unwrap()
}

fn b() -> SlotName {
    SlotName::new("B").unwrap()
}

fn editenv(file: &Path, args: &[&str]) -> String {
    need("grub-editenv", "grub-common");
    let out = Command::new("grub-editenv")
        .arg(file)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "grub-editenv {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn list(file: &Path) -> Vec<String> {
    editenv(file, &["list"])
        .lines()
        .map(str::to_owned)
        .collect()
}

fn has(lines: &[String], line: &str) {
    assert!(lines.iter().any(|l| l == line), "{line:?} not in {lines:?}");
}

fn scratch() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("grubenv");
    (dir, path)
}

#[test]
fn grub_editenv_lists_our_block() {
    let (_dir, path) = scratch();
    let mut state = BootState::new(&[a(), b()], 4).unwrap();
    state.begin_trial(&b()).unwrap();
    GrubEnvStore::new(FileMedium::create(&path))
        .commit(&state)
        .unwrap();
    let lines = list(&path);
    for line in [
        "ORDER=B A",
        "A_OK=1",
        "A_TRY=0",
        "B_OK=1",
        "B_TRY=0",
        "SKERRY_B_LEFT=4",
        "SKERRY_TRIES=4",
    ] {
        has(&lines, line);
    }
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 1024);
}

#[test]
fn rauc_block_from_grub_editenv_loads_with_rauc_meaning() {
    let (_dir, path) = scratch();
    editenv(&path, &["create"]);
    editenv(
        &path,
        &["set", "ORDER=B A", "A_OK=1", "A_TRY=0", "B_OK=1", "B_TRY=1"],
    );
    let state = GrubEnvStore::new(FileMedium::open(&path).unwrap())
        .load()
        .unwrap();
    assert_eq!(state.order().cloned().collect::<Vec<_>>(), vec![b(), a()]);
    assert_eq!(state.status(&a()).unwrap(), SlotStatus::Good);
    assert_eq!(
        state.status(&b()).unwrap(),
        SlotStatus::Trial { tries_left: 0 }
    );
    assert_eq!(state.tries(), 3);
}

#[test]
fn grub_editenv_changes_are_loaded_and_its_variables_kept() {
    let (_dir, path) = scratch();
    editenv(&path, &["create"]);
    editenv(
        &path,
        &["set", "saved_entry=skerry-A", "odd=back\\slash\nline"],
    );
    let mut store = GrubEnvStore::new(FileMedium::open(&path).unwrap());
    let mut state = BootState::new(&[a(), b()], 3).unwrap();
    state.begin_trial(&b()).unwrap();
    state.mark_good(&b()).unwrap();
    store.commit(&state).unwrap();
    // RAUC's mark-bad of A and a new order, written by the real tool.
    editenv(&path, &["set", "A_OK=0", "ORDER=B A"]);
    let loaded = store.load().unwrap();
    assert_eq!(loaded.status(&a()).unwrap(), SlotStatus::Bad);
    assert_eq!(loaded.order().next(), Some(&b()));
    // Our next write keeps the tool's variables byte for byte, escapes included.
    let mut next = loaded;
    next.begin_trial(&a()).unwrap();
    store.commit(&next).unwrap();
    let text = editenv(&path, &["list"]);
    assert!(text.contains("saved_entry=skerry-A\n"), "{text}");
    assert!(text.contains("odd=back\\slash\nline\n"), "{text}");
    has(&list(&path), "SKERRY_A_LEFT=3");
    assert_eq!(store.load().unwrap(), next);
}

#[test]
fn grub_editenv_can_keep_editing_our_block() {
    let (_dir, path) = scratch();
    GrubEnvStore::new(FileMedium::create(&path))
        .commit(&BootState::new(&[a(), b()], 3).unwrap())
        .unwrap();
    editenv(&path, &["set", "extra=1"]);
    editenv(&path, &["unset", "extra"]);
    let state = GrubEnvStore::new(FileMedium::open(&path).unwrap())
        .load()
        .unwrap();
    assert_eq!(state, BootState::new(&[a(), b()], 3).unwrap());
}
