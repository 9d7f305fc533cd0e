//! Property tests of the GPT mapping: any reachable state on any partition numbers
//! loads back exactly, and a picker that follows the ChromeOS firmware's rules (highest
//! priority among entries with priority > 0 that are successful or have tries, ties to
//! the lowest entry) starts the slot the model would. From any reachable state, power-ons
//! by the simulated vboot write what this file's own reading of vboot writes and load
//! as the model under `GiveUp::AtLastAttempt`.

use proptest::prelude::*;
use skerry_boot_state::gpt::attributes::KernelAttributes;
use skerry_boot_state::gpt::{image, table, GptStore};
use skerry_boot_state::sim::Simulated;
use skerry_boot_state::{BootState, BootStore, GiveUp, PowerCutMedium, SlotName};

#[derive(Debug, Clone)]
enum Step {
    Trial(usize),
    Good(usize),
    Bad(usize),
    PowerOn,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (0..5usize).prop_map(Step::Trial),
        (0..5usize).prop_map(Step::Good),
        (0..5usize).prop_map(Step::Bad),
        Just(Step::PowerOn),
    ]
}

/// A reachable state over `n` slots and the slots' partition numbers.
fn reachable() -> impl Strategy<Value = (BootState, Vec<(SlotName, u32)>)> {
    (2..=5usize, 1..=15u8)
        .prop_flat_map(|(n, tries)| {
            (
                Just(tries),
                Just(Vec::from_iter(1..=8u32)).prop_shuffle(),
                prop::collection::vec(step(), 0..24),
                Just(n),
            )
        })
        .prop_map(|(tries, parts, steps, n)| {
            let names: Vec<SlotName> = (0..n)
                .map(|i| SlotName::new(&format!("s{i}")).unwrap())
                .collect();
            let mut state = BootState::new(&names, tries).unwrap();
            for s in steps {
                let _ = match s {
                    Step::Trial(i) => state.begin_trial(&names[i % n]),
                    Step::Good(i) => state.mark_good(&names[i % n]),
                    Step::Bad(i) => state.mark_bad(&names[i % n]),
                    Step::PowerOn => state.power_on().map(|_| ()),
                };
            }
            let slots = names.into_iter().zip(parts).collect();
            (state, slots)
        })
}

/// The firmware's pick over the whole entry array, by the ChromeOS rules.
fn firmware_pick(entries: &[u8], count: u32) -> Option<u32> {
    let mut best: Option<(u8, u32)> = None;
    for i in 0..count {
        if !table::entry_in_use(entries, 128, i) {
            continue;
        }
        let a = KernelAttributes::from_raw(table::attributes(entries, 128, i).unwrap());
        let bootable = a.priority > 0 && (a.successful || a.tries > 0);
        if bootable && best.is_none_or(|(p, _)| a.priority > p) {
            best = Some((a.priority, i + 1));
        }
    }
    best.map(|(_, partition)| partition)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn gpt_reachable_states_round_trip_and_boot_like_the_firmware((state, slots) in reachable()) {
        let disk = image::chromeos_disk(512, 80, 8, 1).unwrap();
        let mut store = GptStore::new(PowerCutMedium::new(disk), slots.clone());
        store.commit(&state).unwrap();
        prop_assert_eq!(store.load().unwrap(), state.clone());

        let t = table::Table::read(store.medium()).unwrap();
        let copy = t.trusted().unwrap();
        let picked = firmware_pick(&copy.entries, copy.header.entry_count);
        let expected = state
            .next_boot()
            .map(|name| slots.iter().find(|(n, _)| n == name).unwrap().1);
        prop_assert_eq!(picked, expected);
    }
}

/// vboot's try count on the entry it starts, written out again here from its source
/// (`GptUpdateKernelWithEntry`, `GPT_UPDATE_ENTRY_TRY`): a successful entry is left
/// alone, more than one try loses one, the last try clears priority and tries.
fn vboot_counted(a: KernelAttributes) -> KernelAttributes {
    if a.successful {
        a
    } else if a.tries > 1 {
        KernelAttributes {
            tries: a.tries - 1,
            ..a
        }
    } else {
        KernelAttributes {
            priority: 0,
            tries: 0,
            ..a
        }
    }
}

fn all_fields(store: &GptStore<PowerCutMedium>) -> Vec<KernelAttributes> {
    let t = table::Table::read(store.medium()).unwrap();
    let copy = t.trusted().unwrap();
    (0..copy.header.entry_count)
        .map(|i| KernelAttributes::from_raw(table::attributes(&copy.entries, 128, i).unwrap()))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn gpt_vboot_power_ons_follow_vboot_and_the_model(
        (state, slots) in reachable(),
        boots in 1..6usize,
    ) {
        let disk = image::chromeos_disk(512, 80, 8, 1).unwrap();
        let mut store = GptStore::new(PowerCutMedium::new(disk), slots.clone());
        store.commit(&state).unwrap();
        let mut model = store.load().unwrap();
        for _ in 0..boots {
            let before = all_fields(&store);
            let t = table::Table::read(store.medium()).unwrap();
            let copy = t.trusted().unwrap();
            let picked = firmware_pick(&copy.entries, copy.header.entry_count).unwrap();
            let booted = store.simulate_boot().unwrap();
            prop_assert_eq!(&slots.iter().find(|(_, p)| *p == picked).unwrap().0, &booted);
            let after = all_fields(&store);
            for (i, (b, a)) in before.iter().zip(&after).enumerate() {
                let expected = if i as u32 + 1 == picked { vboot_counted(*b) } else { *b };
                prop_assert_eq!(*a, expected, "entry {}", i + 1);
            }
            let expected = model.power_on_with(GiveUp::AtLastAttempt).unwrap();
            prop_assert_eq!(&booted, &expected);
            prop_assert_eq!(store.load().unwrap(), model.clone());
        }
    }
}
