//! Property tests of the pure boot-state machine over random sequences of transitions
//! and power-ons, under both rules of giving a trial up (`GiveUp`).

use proptest::prelude::*;
use skerry_boot_state::{BootError, BootState, GiveUp, SlotName, SlotStatus};

#[derive(Debug, Clone)]
enum Op {
    BeginTrial(usize),
    MarkGood(usize),
    MarkBad(usize),
    PowerOn,
    /// A power-on by firmware that gives a trial up as its last attempt starts (vboot).
    PowerOnGivingUpAtLastAttempt,
}

fn op(slots: usize) -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..slots).prop_map(Op::BeginTrial),
        (0..slots).prop_map(Op::MarkGood),
        (0..slots).prop_map(Op::MarkBad),
        Just(Op::PowerOn),
        Just(Op::PowerOn),
        Just(Op::PowerOnGivingUpAtLastAttempt),
    ]
}

fn scenario() -> impl Strategy<Value = (usize, u8, Vec<Op>)> {
    (2usize..=4, 1u8..=15).prop_flat_map(|(slots, tries)| {
        (
            Just(slots),
            Just(tries),
            proptest::collection::vec(op(slots), 0..80),
        )
    })
}

fn names(n: usize) -> Vec<SlotName> {
    ["A", "B", "C", "D"][..n]
        .iter()
        .map(|s| SlotName::new(s).unwrap())
        .collect()
}

fn good_slots(s: &BootState) -> Vec<SlotName> {
    s.slots()
        .iter()
        .filter(|e| e.status == SlotStatus::Good)
        .map(|e| e.name.clone())
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// After any sequence the state keeps its invariants and the bootloader finds a slot.
    #[test]
    fn bootloader_always_finds_a_slot((n, tries, ops) in scenario()) {
        let slots = names(n);
        let mut state = BootState::new(&slots, tries).unwrap();
        for op in &ops {
            let _ = apply(&mut state, &slots, op);
            prop_assert!(state.check().is_ok(), "invariant broken after {op:?}: {state:?}");
            prop_assert!(state.next_boot().is_some());
            let mut probe = state.clone();
            prop_assert!(probe.power_on().is_ok());
        }
    }

    /// A refused transition changes nothing; an accepted one never leaves the device
    /// without a good slot.
    #[test]
    fn refused_transitions_change_nothing((n, tries, ops) in scenario()) {
        let slots = names(n);
        let mut state = BootState::new(&slots, tries).unwrap();
        for op in &ops {
            let before = state.clone();
            match apply(&mut state, &slots, op) {
                Err(_) => prop_assert_eq!(&state, &before, "refused {:?} changed the state", op),
                Ok(()) => prop_assert!(!good_slots(&state).is_empty()),
            }
        }
    }

    /// While a slot is on trial, no known-good slot is made unbootable: neither by a
    /// transition nor by the bootloader.
    #[test]
    fn good_slots_stay_bootable_during_a_trial((n, tries, ops) in scenario()) {
        let slots = names(n);
        let mut state = BootState::new(&slots, tries).unwrap();
        for op in &ops {
            let trial = state.trial().cloned();
            let good_before = good_slots(&state);
            let _ = apply(&mut state, &slots, op);
            if trial.is_some() {
                for g in &good_before {
                    let now = state.status(g).unwrap();
                    prop_assert!(BootState::is_bootable(now),
                        "good slot {} became {:?} during the trial of {:?} by {:?}", g, now, trial, op);
                }
            }
        }
    }

    /// A trial that is never marked good boots exactly `tries` times, then the device
    /// falls back to a good slot for good.
    #[test]
    fn unconfirmed_trial_rolls_back_after_exactly_its_tries(
        n in 2usize..=4,
        tries in 1u8..=15,
        pick in 1usize..4,
        rule in prop_oneof![Just(GiveUp::AfterLastAttempt), Just(GiveUp::AtLastAttempt)],
    ) {
        let slots = names(n);
        let target = slots[pick % n].clone();
        let mut state = BootState::new(&slots, tries).unwrap();
        prop_assume!(target != slots[0]);
        state.begin_trial(&target).unwrap();
        for _ in 0..tries {
            prop_assert_eq!(state.power_on_with(rule).unwrap(), target.clone());
        }
        for _ in 0..3 {
            let booted = state.power_on_with(rule).unwrap();
            prop_assert_eq!(state.status(&booted).unwrap(), SlotStatus::Good);
        }
        prop_assert_eq!(state.status(&target).unwrap(), SlotStatus::Bad);
    }

    /// Loading any state through serde and checking it gives it back unchanged.
    #[test]
    fn states_round_trip_through_json((n, tries, ops) in scenario()) {
        let slots = names(n);
        let mut state = BootState::new(&slots, tries).unwrap();
        for op in &ops { let _ = apply(&mut state, &slots, op); }
        let json = serde_json::to_string(&state).unwrap();
        let back: BootState = serde_json::from_str(&json).unwrap();
        prop_assert!(back.check().is_ok());
        prop_assert_eq!(back, state);
    }
}

fn apply(state: &mut BootState, slots: &[SlotName], op: &Op) -> Result<(), BootError> {
    match op {
        Op::BeginTrial(i) => state.begin_trial(&slots[*i]),
        Op::MarkGood(i) => state.mark_good(&slots[*i]),
        Op::MarkBad(i) => state.mark_bad(&slots[*i]),
        Op::PowerOn => state.power_on().map(drop),
        Op::PowerOnGivingUpAtLastAttempt => state.power_on_with(GiveUp::AtLastAttempt).map(drop),
    }
}

#[test]
fn a_state_without_good_slot_is_rejected() {
    let slots = names(2);
    let entries = slots
        .iter()
        .map(|name| skerry_boot_state::SlotState {
            name: name.clone(),
            status: SlotStatus::Trial { tries_left: 1 },
        })
        .collect();
    assert_eq!(
        BootState::from_parts(entries, 3).unwrap_err(),
        BootError::NoGoodSlot
    );
}
