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
fn init_creates_a_1024_byte_block_and_its_second_copy() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("grubenv");
    let mut store = GrubEnvStore::new(FileMedium::create(&path));
    let mut state = BootState::new(&slots(), 5).unwrap();
    store.commit(&state).unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 1024);
    state.begin_trial(&slots()[1]).unwrap();
    store.commit(&state).unwrap();
    assert_eq!(store.load().unwrap(), state);
    // The block and its second copy, rewritten in place: no temp file is left.
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["grubenv", "grubenv.b"]);
    assert_eq!(
        std::fs::read(&path).unwrap(),
        std::fs::read(dir.path().join("grubenv.b")).unwrap()
    );
}

#[test]
fn a_torn_block_loads_its_second_copy() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("grubenv");
    let mut store = GrubEnvStore::new(FileMedium::create(&path));
    let old = BootState::new(&slots(), 5).unwrap();
    store.commit(&old).unwrap();
    let old_block = std::fs::read(&path).unwrap();
    let mut new = old.clone();
    new.begin_trial(&slots()[1]).unwrap();
    store.commit(&new).unwrap();
    // A cut inside the block's rewrite: its first sector new, its last one old.
    let mut torn = std::fs::read(&path).unwrap();
    torn[512..].copy_from_slice(&old_block[512..]);
    std::fs::write(&path, &torn).unwrap();
    let store = GrubEnvStore::new(FileMedium::create(&path));
    assert_eq!(store.load().unwrap(), new);
    // Without the second copy a torn block is an error, never a mix.
    std::fs::remove_file(dir.path().join("grubenv.b")).unwrap();
    let err = GrubEnvStore::new(FileMedium::create(&path))
        .load()
        .unwrap_err();
    assert!(err.to_string().contains("torn"), "{err}");
}

#[test]
fn a_block_of_another_size_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("grubenv");
    let mut block = b"# GRUB Environment Block\n".to_vec();
    block.resize(2048, b'#');
    std::fs::write(&path, &block).unwrap();
    let err = GrubEnvStore::new(FileMedium::create(&path))
        .commit(&BootState::new(&slots(), 5).unwrap())
        .unwrap_err();
    assert!(err.to_string().contains("2048"), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), block);
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
