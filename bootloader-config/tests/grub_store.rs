//! The GRUB environment store against the conformance suite (torn writes included), plus
//! file behaviours the suite does not cover.

use skerry_boot_state::conformance::{boot_store_suite, Harness};
use skerry_boot_state::grub::GrubEnvStore;
use skerry_boot_state::{BootState, BootStore, FileMedium, PowerCutMedium, SlotName, StoreError};

fn slots() -> Vec<SlotName> {
    vec![SlotName::new("A").unwrap(), SlotName::new("B").unwrap()]
}

#[test]
fn grub_env_passes_the_suite() {
    boot_store_suite(&Harness {
        open: GrubEnvStore::new,
        take: GrubEnvStore::into_medium,
        blank: PowerCutMedium::new(Vec::new()),
        slots: slots(),
    });
}

#[test]
fn three_slots_pass_the_suite() {
    boot_store_suite(&Harness {
        open: GrubEnvStore::new,
        take: GrubEnvStore::into_medium,
        blank: PowerCutMedium::new(Vec::new()),
        slots: ["system0", "system1", "rescue"]
            .iter()
            .map(|n| SlotName::new(n).unwrap())
            .collect(),
    });
}

#[test]
fn init_creates_a_1024_byte_block_and_replaces_it_whole() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("grubenv");
    let mut store = GrubEnvStore::new(FileMedium::create(&path));
    let mut state = BootState::new(&slots(), 5).unwrap();
    store.commit(&state).unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 1024);
    state.begin_trial(&slots()[1]).unwrap();
    store.commit(&state).unwrap();
    assert_eq!(store.load().unwrap(), state);
    // Only the block itself is left in the directory: the temp file was renamed.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn a_file_that_is_not_a_block_is_not_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("grub.cfg");
    std::fs::write(&path, "menuentry x {}\n").unwrap();
    let mut store = GrubEnvStore::new(FileMedium::open(&path).unwrap());
    let err = store
        .commit(&BootState::new(&slots(), 3).unwrap())
        .unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("refusing to overwrite"), "{err}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "menuentry x {}\n");
}
