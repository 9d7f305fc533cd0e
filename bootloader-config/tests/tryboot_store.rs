//! The tryboot store: the conformance suite (torn writes included), the firmware's
//! one-shot flag across separate store instances on a directory, and `autoboot.txt`
//! fixtures (hand-edited, CRLF, hostile).

use std::path::{Path, PathBuf};

use skerry_boot_state::conformance::{boot_store_suite, Harness};
use skerry_boot_state::sim::Simulated;
use skerry_boot_state::tryboot::{TrybootStore, AUTOBOOT_FILE, TRYBOOT_REBOOT_ARG};
use skerry_boot_state::{BootState, BootStore, PowerCutMedium, SlotName, SlotStatus};

fn name(s: &str) -> SlotName {
    SlotName::new(s).unwrap()
}

fn ab() -> Vec<(SlotName, u32)> {
    vec![(name("A"), 2), (name("B"), 3)]
}

fn fixture(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/tryboot")
        .join(file)
}

/// A directory holding `file` as its autoboot.txt.
fn dir_with(file: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(fixture(file), dir.path().join(AUTOBOOT_FILE)).unwrap();
    dir
}

#[test]
fn tryboot_store_passes_conformance_suite() {
    boot_store_suite(&Harness {
        open: |m| TrybootStore::new(m, ab()),
        take: |s: TrybootStore<PowerCutMedium>| s.into_medium(),
        blank: PowerCutMedium::new(Vec::new()),
        slots: vec![name("A"), name("B")],
    });
}

#[test]
fn tryboot_store_with_three_slots_passes_conformance_suite() {
    let slots = vec![(name("A"), 2), (name("B"), 3), (name("C"), 5)];
    boot_store_suite(&Harness {
        open: move |m| TrybootStore::new(m, slots.clone()),
        take: |s: TrybootStore<PowerCutMedium>| s.into_medium(),
        // A hand-written file without a record is not a boot state either.
        blank: PowerCutMedium::new(std::fs::read(fixture("hand-edited-crlf.txt")).unwrap()),
        slots: vec![name("A"), name("B"), name("C")],
    });
}

/// Each step opens a fresh store on the directory, as separate `skerryctl` calls do.
fn fresh(dir: &Path) -> TrybootStore<skerry_boot_state::FileMedium> {
    TrybootStore::open_dir(dir, ab()).unwrap()
}

#[test]
fn trial_gets_one_boot_then_falls_back_to_all_across_invocations() {
    let dir = tempfile::tempdir().unwrap();
    let mut state = BootState::new(&[name("A"), name("B")], 1).unwrap();
    fresh(dir.path()).commit(&state).unwrap();
    state.begin_trial(&name("B")).unwrap();
    fresh(dir.path()).commit(&state).unwrap();
    let text = std::fs::read_to_string(dir.path().join(AUTOBOOT_FILE)).unwrap();
    // One sector, rewritten in place: the content, then a padding comment to 512 bytes.
    let content = "# skerry-boot-state v1: B=trial:1 A=good\n[all]\ntryboot_a_b=1\nboot_partition=2\n[tryboot]\nboot_partition=3\n";
    assert_eq!(text.len(), 512);
    assert_eq!(text.trim_end_matches(['#', '\n']), content.trim_end());
    // The tryboot boot: B, once.
    assert_eq!(
        fresh(dir.path())
            .simulate_boot_after(TRYBOOT_REBOOT_ARG)
            .unwrap(),
        name("B")
    );
    assert_eq!(
        fresh(dir.path())
            .load()
            .unwrap()
            .status(&name("B"))
            .unwrap(),
        SlotStatus::Trial { tries_left: 0 }
    );
    // B hung: the next power-on boots [all] and B is given up.
    assert_eq!(fresh(dir.path()).simulate_boot().unwrap(), name("A"));
    let after = fresh(dir.path()).load().unwrap();
    assert_eq!(after.status(&name("B")).unwrap(), SlotStatus::Bad);
    assert_eq!(fresh(dir.path()).simulate_boot().unwrap(), name("A"));
    // No temp files are left beside autoboot.txt.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn committed_trial_makes_all_point_at_the_new_slot() {
    let dir = tempfile::tempdir().unwrap();
    let mut state = BootState::new(&[name("A"), name("B")], 1).unwrap();
    state.begin_trial(&name("B")).unwrap();
    fresh(dir.path()).commit(&state).unwrap();
    assert_eq!(
        fresh(dir.path())
            .simulate_boot_after(TRYBOOT_REBOOT_ARG)
            .unwrap(),
        name("B")
    );
    let mut state = fresh(dir.path()).load().unwrap();
    state.mark_good(&name("B")).unwrap();
    fresh(dir.path()).commit(&state).unwrap();
    let text = std::fs::read_to_string(dir.path().join(AUTOBOOT_FILE)).unwrap();
    assert!(
        text.contains("[all]\ntryboot_a_b=1\nboot_partition=3\n"),
        "{text}"
    );
    assert_eq!(fresh(dir.path()).simulate_boot().unwrap(), name("B"));
}

#[test]
fn hand_edited_crlf_file_keeps_its_lines_on_init() {
    let dir = dir_with("hand-edited-crlf.txt");
    let mut store = fresh(dir.path());
    let err = store.load().unwrap_err().to_string();
    assert!(err.contains("skerryctl boot init"), "{err}");
    let state = BootState::new(&[name("A"), name("B")], 1).unwrap();
    store.commit(&state).unwrap();
    assert_eq!(store.load().unwrap(), state);
    let text = std::fs::read_to_string(dir.path().join(AUTOBOOT_FILE)).unwrap();
    let before = std::fs::read_to_string(fixture("hand-edited-crlf.txt")).unwrap();
    for kept in before
        .split("\r\n")
        .filter(|l| !l.starts_with("boot_partition") && !l.starts_with("tryboot_a_b"))
    {
        assert!(
            text.contains(&format!("{kept}\r\n")),
            "lost {kept:?}: {text:?}"
        );
    }
    // [none]'s line is not ours to remove: the firmware never applies it.
    assert!(text.contains("[none]\r\nboot_partition=9\r\n"), "{text:?}");
    assert!(
        !text.replace("\r\n", "").contains('\n'),
        "mixed line endings: {text:?}"
    );
}

#[test]
fn documented_layout_without_record_is_refused_by_load_but_taken_over_by_init() {
    let dir = dir_with("documented-a-b.txt");
    assert!(fresh(dir.path()).load().is_err());
    let mut state = BootState::new(&[name("A"), name("B")], 1).unwrap();
    state.begin_trial(&name("B")).unwrap();
    fresh(dir.path()).commit(&state).unwrap();
    assert_eq!(fresh(dir.path()).load().unwrap(), state);
}

#[test]
fn filtered_boot_partition_is_refused_and_file_left_alone() {
    let dir = dir_with("hostile-filtered-partition.txt");
    let path = dir.path().join(AUTOBOOT_FILE);
    let before = std::fs::read(&path).unwrap();
    let state = BootState::new(&[name("A"), name("B")], 1).unwrap();
    let err = fresh(dir.path()).commit(&state).unwrap_err().to_string();
    assert!(err.contains("[pi5]") && err.contains("line 5"), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

#[test]
fn record_that_disagrees_with_the_firmware_keys_is_named() {
    let dir = dir_with("disagreeing-record.txt");
    let err = fresh(dir.path()).load().unwrap_err().to_string();
    assert!(err.contains("[all] boot_partition is Some(3)"), "{err}");
}

#[test]
fn tries_other_than_one_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let state = BootState::new(&[name("A"), name("B")], 3).unwrap();
    let err = fresh(dir.path()).commit(&state).unwrap_err().to_string();
    assert!(err.contains("tries must be 1"), "{err}");
    assert!(!dir.path().join(AUTOBOOT_FILE).exists());
}

#[test]
fn open_dir_needs_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    assert!(TrybootStore::open_dir(&file, ab()).is_err());
    assert!(TrybootStore::open_dir(&dir.path().join("missing"), ab()).is_err());
}
