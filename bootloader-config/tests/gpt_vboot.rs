//! The GPT store under ChromeOS vboot's rules (the simulated firmware in
//! `gpt::firmware`): what vboot writes at each boot, case by case; a trial of one
//! attempt commits; the last of several attempts can be marked good by the slot that
//! runs it; and the model under `GiveUp::AtLastAttempt` agrees with the disk.

use skerry_boot_state::gpt::attributes::{KernelAttributes, OWNED_MASK};
use skerry_boot_state::gpt::{image, table, GptStore};
use skerry_boot_state::sim::Simulated;
use skerry_boot_state::{BootState, BootStore, GiveUp, PowerCutMedium, SlotName, SlotStatus};

fn name(s: &str) -> SlotName {
    SlotName::new(s).unwrap()
}

/// A on partition 2, B on partition 3.
fn ab() -> Vec<(SlotName, u32)> {
    vec![(name("A"), 2), (name("B"), 3)]
}

fn blank() -> PowerCutMedium {
    PowerCutMedium::new(image::chromeos_disk(512, 80, 3, 2).unwrap())
}

fn attrs(priority: u8, tries: u8, successful: bool) -> KernelAttributes {
    KernelAttributes {
        priority,
        tries,
        successful,
    }
}

/// The fields of partition `number` as the trusted table holds them.
fn fields(store: &GptStore<PowerCutMedium>, number: u32) -> KernelAttributes {
    let t = table::Table::read(store.medium()).unwrap();
    let copy = t.trusted().unwrap();
    KernelAttributes::from_raw(
        table::attributes(&copy.entries, copy.header.entry_size, number - 1).unwrap(),
    )
}

/// A disk whose slot partitions carry exactly `a` and `b`, written the way `cgpt add`
/// writes them.
fn disk_with(a: KernelAttributes, b: KernelAttributes) -> GptStore<PowerCutMedium> {
    let mut disk = blank();
    let t = table::Table::read(&disk).unwrap();
    let copy = t.trusted().unwrap();
    let mut entries = copy.entries.clone();
    let size = copy.header.entry_size;
    for (number, f) in [(2, a), (3, b)] {
        let raw = table::attributes(&entries, size, number - 1).unwrap();
        table::set_attributes(&mut entries, size, number - 1, f.apply(raw));
    }
    t.write_entries(&mut disk, &entries).unwrap();
    disk.power_on();
    GptStore::new(disk, ab())
}

/// What vboot starts and writes, from the fields it finds: `(A before, B before, slot
/// started, A after, B after)`. vboot_reference's `GptNextKernelEntry` picks,
/// `GptUpdateKernelEntry(GPT_UPDATE_ENTRY_TRY)` counts.
#[test]
fn vboot_starts_and_counts_as_its_source_says() {
    let good = attrs(1, 3, true);
    let cases = [
        // A trial with tries left loses one.
        (good, attrs(2, 3, false), "B", good, attrs(2, 2, false)),
        (good, attrs(2, 2, false), "B", good, attrs(2, 1, false)),
        // Its last attempt: priority and tries go to 0 before the kernel starts.
        (good, attrs(2, 1, false), "B", good, attrs(0, 0, false)),
        // Spent (tries 0, not successful) or priority 0: skipped, nothing written.
        (good, attrs(2, 0, false), "A", good, attrs(2, 0, false)),
        (good, attrs(0, 3, false), "A", good, attrs(0, 3, false)),
        (good, attrs(0, 0, false), "A", good, attrs(0, 0, false)),
        // Equal priorities: the lower partition (A) wins; a successful pick writes nothing.
        (good, attrs(1, 3, false), "A", good, attrs(1, 3, false)),
        // A successful entry's tries are ignored and left alone.
        (good, attrs(2, 5, true), "B", good, attrs(2, 5, true)),
        (
            attrs(1, 0, true),
            attrs(2, 1, true),
            "B",
            attrs(1, 0, true),
            attrs(2, 1, true),
        ),
        // Higher priority wins whatever the partition order.
        (
            attrs(3, 2, false),
            attrs(2, 3, true),
            "A",
            attrs(3, 1, false),
            attrs(2, 3, true),
        ),
    ];
    for (a, b, started, a_after, b_after) in cases {
        let mut store = disk_with(a, b);
        let before = store.medium().bytes().to_vec();
        assert_eq!(
            store.simulate_boot().unwrap(),
            name(started),
            "A {a:?}, B {b:?}"
        );
        assert_eq!(fields(&store, 2), a_after, "A after, from A {a:?}, B {b:?}");
        assert_eq!(fields(&store, 3), b_after, "B after, from A {a:?}, B {b:?}");
        if (a, b) == (a_after, b_after) {
            assert_eq!(store.medium().bytes(), &before[..], "nothing is written");
        }
    }
}

#[test]
fn vboot_with_nothing_bootable_is_an_error_not_a_guess() {
    let mut store = disk_with(attrs(0, 0, true), attrs(0, 2, false));
    let err = store.simulate_boot().unwrap_err();
    assert!(err.to_string().contains("recovery"), "{err}");
}

/// Begins a trial of B with `tries` attempts on a fresh A/B disk.
fn trial_of_b(tries: u8) -> GptStore<PowerCutMedium> {
    let mut store = GptStore::new(blank(), ab());
    let mut state = BootState::new(&[name("A"), name("B")], tries).unwrap();
    store.commit(&state).unwrap();
    state.begin_trial(&name("B")).unwrap();
    store.commit(&state).unwrap();
    store
}

/// The running system, started from `running`, marks itself good.
fn mark_good_as_running(
    store: GptStore<PowerCutMedium>,
    running: &str,
) -> GptStore<PowerCutMedium> {
    let mut store = GptStore::new(store.into_medium(), ab()).running(name(running));
    let mut state = store.load().unwrap();
    assert_eq!(
        state.status(&name(running)).unwrap(),
        SlotStatus::Trial { tries_left: 0 },
        "the slot vboot started on its last attempt runs that attempt"
    );
    state.mark_good(&name(running)).unwrap();
    store.commit(&state).unwrap();
    store
}

#[test]
fn a_trial_of_one_attempt_commits() {
    let mut store = trial_of_b(1);
    assert_eq!(store.simulate_boot().unwrap(), name("B"));
    // vboot gave B up on the way in.
    assert_eq!(fields(&store, 3), attrs(0, 0, false));
    let mut store = mark_good_as_running(store, "B");
    let b = fields(&store, 3);
    assert!(b.priority > fields(&store, 2).priority, "B first: {b:?}");
    assert!(b.successful);
    for _ in 0..3 {
        assert_eq!(store.simulate_boot().unwrap(), name("B"));
    }
    let state = store.load().unwrap();
    assert_eq!(state.status(&name("B")).unwrap(), SlotStatus::Good);
    assert_eq!(state.status(&name("A")).unwrap(), SlotStatus::Good);
    assert_eq!(state.tries(), 1);
}

#[test]
fn the_last_of_three_attempts_can_be_marked_good() {
    let mut store = trial_of_b(3);
    for _ in 0..3 {
        assert_eq!(store.simulate_boot().unwrap(), name("B"));
    }
    assert_eq!(fields(&store, 3), attrs(0, 0, false));
    let mut store = mark_good_as_running(store, "B");
    assert_eq!(store.simulate_boot().unwrap(), name("B"));
    assert_eq!(store.load().unwrap().order().next(), Some(&name("B")));
}

#[test]
fn without_the_running_slot_a_given_up_trial_is_bad_and_a_falls_back() {
    let mut store = trial_of_b(2);
    assert_eq!(store.simulate_boot().unwrap(), name("B"));
    assert_eq!(store.simulate_boot().unwrap(), name("B"));
    // Not marked good during its last attempt: bad, and the firmware starts A.
    let state = store.load().unwrap();
    assert_eq!(state.status(&name("B")).unwrap(), SlotStatus::Bad);
    assert!(state.clone().mark_good(&name("B")).is_err());
    assert_eq!(store.simulate_boot().unwrap(), name("A"));
    // Running A, B reads bad too: only the running slot is taken for its last attempt.
    let other = GptStore::new(store.into_medium(), ab()).running(name("A"));
    assert_eq!(
        other.load().unwrap().status(&name("B")).unwrap(),
        SlotStatus::Bad
    );
}

#[test]
fn the_model_gives_up_at_the_last_attempt_as_vboot_does() {
    let mut store = trial_of_b(3);
    let mut model = store.load().unwrap();
    for _ in 0..5 {
        let expected = model.power_on_with(GiveUp::AtLastAttempt).unwrap();
        assert_eq!(store.simulate_boot().unwrap(), expected);
        assert_eq!(store.load().unwrap(), model);
    }
    assert_eq!(model.status(&name("B")).unwrap(), SlotStatus::Bad);
}

/// vboot rewrites only the priority, tries and successful bits of the entry it starts:
/// the other attribute bits (bit 0 "required", bit 2 "legacy BIOS bootable", bits 57-63)
/// of that entry and of its neighbours stay as they were.
#[test]
fn counting_a_try_keeps_every_other_attribute_bit() {
    let mut store = trial_of_b(3);
    let others = 0x8400_0000_0000_0005u64;
    let mut disk = store.into_medium();
    let t = table::Table::read(&disk).unwrap();
    let copy = t.trusted().unwrap();
    let mut entries = copy.entries.clone();
    let size = copy.header.entry_size;
    for index in 0..3 {
        let raw = table::attributes(&entries, size, index).unwrap();
        table::set_attributes(&mut entries, size, index, raw | others);
    }
    t.write_entries(&mut disk, &entries).unwrap();
    disk.power_on();
    store = GptStore::new(disk, ab());
    for _ in 0..3 {
        assert_eq!(store.simulate_boot().unwrap(), name("B"));
        let t = table::Table::read(store.medium()).unwrap();
        let copy = t.trusted().unwrap();
        for index in 0..3 {
            let raw = table::attributes(&copy.entries, size, index).unwrap();
            assert_eq!(raw & !OWNED_MASK, others, "partition {}", index + 1);
        }
    }
    assert_eq!(fields(&store, 3), attrs(0, 0, false));
}

/// A slot configured on partition 0, past the table, or on the table's last entry.
#[test]
fn slot_partitions_are_checked_against_the_table() {
    // Four entries, all in use: partition 4 is the table's last.
    let disk = image::chromeos_disk_with_entries(512, 40, 4, 2, 4).unwrap();
    let on = |b: u32| {
        GptStore::new(
            PowerCutMedium::new(disk.clone()),
            vec![(name("A"), 2), (name("B"), b)],
        )
    };
    let state = BootState::new(&[name("A"), name("B")], 3).unwrap();
    for bad in [0, 5, 6] {
        let err = on(bad).commit(&state).unwrap_err();
        assert!(
            err.to_string().contains("partitions 1..=4"),
            "partition {bad}: {err}"
        );
    }
    let mut last = on(4);
    last.commit(&state).unwrap();
    assert_eq!(last.load().unwrap(), state);
    // The tries field is four bits wide: a trial can get up to 15 attempts.
    assert_eq!(last.max_tries(), 15);
}
