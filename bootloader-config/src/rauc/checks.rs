//! Unit-test checks both environment mappings (U-Boot's and GRUB's) must pass, run
//! from each mapping's tests with its own `write_state` and `power_on`.

use crate::rauc::vars::{Decision, Vars};
use crate::state::{BootState, SlotName};

/// Slot names from plain strings.
pub(crate) fn names(list: &[&str]) -> Vec<SlotName> {
    list.iter().map(|n| SlotName::new(n).unwrap()).collect()
}

/// A good slot first in the order starts, and the script neither saves nor changes a
/// variable: power cuts at boot cannot wear a good slot out.
pub(crate) fn good_slot_starts_without_writing(
    write_state: fn(&mut Vars, &BootState),
    power_on: fn(&mut Vars) -> Decision,
) {
    let state = BootState::new(&names(&["A", "B"]), 3).unwrap();
    let mut env = Vars::default();
    write_state(&mut env, &state);
    let before = env.clone();
    let d = power_on(&mut env);
    assert_eq!(d.slot.unwrap().as_str(), "A");
    assert!(!d.save);
    assert_eq!(env, before);
}
