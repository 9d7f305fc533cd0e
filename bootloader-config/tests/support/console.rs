//! A real bootloader's power-on as its console showed it (QEMU's serial line,
//! `grub-emu`'s stdout), and the check that it did what the model does.
//!
//! Uses [`super::model_check`], so a test file including this module includes that one too.

use skerry_boot_state::uboot::vars::{MappingError, Vars};
use skerry_boot_state::{BootState, SlotName};

use super::model_check::RaucView;

/// What a real bootloader did at one power-on.
pub struct ConsoleBoot {
    /// The slot the script chose.
    pub chosen: String,
    /// Whether the bootloader tried to save its environment.
    pub saved: bool,
    /// The boot state variables it held after the script, as it printed them.
    pub vars: Vars,
}

impl ConsoleBoot {
    /// This boot, from an environment holding `state`, did what the model's power-on
    /// does: it chose the same slot, saved exactly when the state changed, and holds
    /// variables that read back (with the mapping's `read_state`) as the model's new
    /// state, RAUC's view included. Returns the slot.
    pub fn assert_like_model(
        &self,
        state: &BootState,
        read_state: fn(&Vars) -> Result<BootState, MappingError>,
        rauc_view: &RaucView,
    ) -> SlotName {
        let mut model = state.clone();
        let expected = model.power_on().unwrap();
        assert_eq!(self.chosen, expected.as_str(), "from {state:?}");
        assert_eq!(self.saved, model != *state, "saved? from {state:?}");
        assert_eq!(
            read_state(&self.vars).unwrap(),
            model,
            "the bootloader's variables after the script, from {state:?}"
        );
        rauc_view.assert_matches(&self.vars, &model);
        expected
    }
}

/// The `name=value` lines of `output` whose name is in `wanted`, as variables (the
/// bootloader printed them after the script ran).
pub fn printed_vars(output: &str, wanted: &[String]) -> Vars {
    let mut vars = Vars::default();
    for line in output.lines() {
        if let Some((name, value)) = line.split_once('=') {
            if wanted.iter().any(|w| w == name) {
                vars.set(name, value);
            }
        }
    }
    vars
}
