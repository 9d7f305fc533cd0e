//! What every check of a generated boot script (U-Boot or GRUB) against the pure model
//! needs: slot names, and RAUC's view of the variables after the script ran.

use skerry_boot_state::uboot::vars::Vars;
use skerry_boot_state::{BootState, SlotName, SlotStatus};

/// Slot names from plain strings.
pub fn names(list: &[&str]) -> Vec<SlotName> {
    list.iter().map(|n| SlotName::new(n).unwrap()).collect()
}

/// The slot a generated script must start from `state` when saving the environment
/// fails: the model's choice if nothing needed saving; else the first good slot of the
/// order, because an attempt that was counted but not saved must never start a trial
/// (or the model's choice when no slot is good: there is nothing better to start).
pub fn unsaved_choice(state: &BootState) -> String {
    let mut model = state.clone();
    let chosen = model.power_on().unwrap();
    if model == *state {
        return chosen.as_str().to_owned();
    }
    state
        .slots()
        .iter()
        .find(|s| s.status == SlotStatus::Good)
        .map_or(chosen.as_str(), |s| s.name.as_str())
        .to_owned()
}

/// The variables RAUC's bootloader backend reads from an environment, and how the
/// backend's store writes a state into it.
pub struct RaucView {
    /// The store's mapping of a state to variables (`mapping::write_state`).
    pub write_state: fn(&mut Vars, &BootState),
    /// Variables RAUC reads whatever the slots (`BOOT_ORDER`).
    pub fixed: &'static [&'static str],
    /// Variables RAUC reads for each slot (`BOOT_<slot>_LEFT`, `<slot>_OK`, ...).
    pub per_slot: &'static [fn(&str) -> String],
}

impl RaucView {
    /// After the script, the variables RAUC reads must be exactly what a commit of the
    /// model's new state writes.
    pub fn assert_matches(&self, after: &Vars, model: &BootState) {
        let mut committed = Vars::default();
        (self.write_state)(&mut committed, model);
        let mut rauc_vars: Vec<String> = self.fixed.iter().map(|v| v.to_string()).collect();
        for slot in model.slots() {
            rauc_vars.extend(self.per_slot.iter().map(|var| var(slot.name.as_str())));
        }
        for var in rauc_vars {
            assert_eq!(
                after.get(&var),
                committed.get(&var),
                "{var} after the script, for {model:?}"
            );
        }
    }
}
