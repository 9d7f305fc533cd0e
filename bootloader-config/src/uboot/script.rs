//! The U-Boot boot script (`boot.cmd` source; `mkimage -A arm64 -T script -C none -d
//! boot.cmd boot.scr` wraps it) that picks the slot exactly as the model's power-on does,
//! on the variables of [`crate::uboot::mapping`].
//!
//! Hush has no indirect variable names, so each slot gets its own branch; and instead of
//! `setexpr` (optional in U-Boot, and hexadecimal) a slot's count goes down through a
//! table of literal comparisons from [`MAX_TRIES`] to 1.

use std::fmt::Write;

use crate::state::{BootState, SlotName, MAX_TRIES};
use crate::uboot::mapping::{left_var, trial_var, ORDER_VAR};

/// The `boot.cmd` source for the slots of `slots` (the state a device is initialised
/// with: its slot names, and its first slot, which the script starts when the environment
/// holds no bootable slot). The chosen slot is in `${skerry_slot}` when `boot_commands`
/// run, e.g. `setenv bootargs "${bootargs} rauc.slot=${skerry_slot}"; run boot_${skerry_slot}`.
pub fn boot_script(slots: &BootState, boot_commands: &str) -> String {
    let names: Vec<&SlotName> = slots.order().collect();
    let fallback = names[0].as_str();
    let list: Vec<&str> = names.iter().map(|n| n.as_str()).collect();
    let mut s = String::new();
    // Writing to a String cannot fail.
    let _ = write!(
        s,
        "# Skerry A/B slot selection for U-Boot; generated for slots {list}, do not edit.\n\
         # Reads RAUC's {ORDER_VAR} and BOOT_<slot>_LEFT plus SKERRY_<slot>_TRIAL. A good\n\
         # slot starts without using an attempt; a slot on trial uses one; a trial with\n\
         # none left is given up. The environment is saved only when it changed; if that\n\
         # save fails, the first good slot starts instead of the trial.\n\
         setenv skerry_slot\n\
         setenv skerry_save\n\
         setenv skerry_unsaved\n\
         for skerry_next in ${{{ORDER_VAR}}}; do\n\
         \x20 if test -z \"${{skerry_slot}}\"; then\n",
        list = list.join(" "),
    );
    for name in &list {
        slot_branch(&mut s, name);
    }
    let _ = write!(
        s,
        "  fi\n\
         done\n\
         if test -z \"${{skerry_slot}}\"; then\n\
         \x20 echo \"skerry: no bootable slot in {ORDER_VAR} (${{{ORDER_VAR}}}); starting {fallback}, environment unchanged\"\n\
         \x20 setenv skerry_slot {fallback}\n\
         \x20 setenv skerry_save\n\
         fi\n\
         if test -n \"${{skerry_save}}\"; then\n\
         \x20 setenv skerry_save\n"
    );
    // Save without our scratch variables, then set the slot again for the boot commands;
    // a failed save is remembered in `skerry_unsaved` (set only after the save).
    for name in &list {
        let _ = writeln!(
            s,
            "  if test \"${{skerry_slot}}\" = \"{name}\"; then setenv skerry_slot; \
             if saveenv; then setenv skerry_slot {name}; else setenv skerry_slot {name}; setenv skerry_unsaved 1; fi; fi"
        );
    }
    s.push_str("fi\n");
    unsaved_fallback(&mut s, &list);
    let _ = write!(
        s,
        "echo \"skerry: starting slot ${{skerry_slot}}\"\n\
         {boot_commands}\n"
    );
    s
}

/// When `saveenv` failed, the attempt just counted is not in the flash: starting a trial
/// now would start it again with the same count at the next power-on, forever. So the
/// first good slot of the order starts instead; only with no good slot at all does the
/// chosen slot start unsaved (there is nothing better to start).
fn unsaved_fallback(s: &mut String, list: &[&str]) {
    let _ = write!(
        s,
        "if test -n \"${{skerry_unsaved}}\"; then\n\
         \x20 setenv skerry_unsaved\n\
         \x20 setenv skerry_good\n\
         \x20 for skerry_next in ${{{ORDER_VAR}}}; do\n\
         \x20   if test -z \"${{skerry_good}}\"; then\n"
    );
    for name in list {
        let (left, trial) = (left_var(name), trial_var(name));
        let _ = write!(
            s,
            "      if test \"${{skerry_next}}\" = \"{name}\"; then\n\
             \x20       if test \"${{{trial}}}\" != \"1\"; then\n\
             \x20         if test \"${{{left}}}\" -gt 0; then\n\
             \x20           setenv skerry_good {name}\n\
             \x20         fi\n\
             \x20       fi\n\
             \x20     fi\n"
        );
    }
    s.push_str(
        "    fi\n\
         \x20 done\n\
         \x20 if test -n \"${skerry_good}\"; then\n\
         \x20   echo \"skerry: saving the environment failed; starting known-good slot ${skerry_good} instead of ${skerry_slot}\"\n\
         \x20   setenv skerry_slot ${skerry_good}\n\
         \x20 else\n\
         \x20   echo \"skerry: saving the environment failed and no slot is known good; starting ${skerry_slot} with its attempt unsaved\"\n\
         \x20 fi\n\
         \x20 setenv skerry_good\n\
         fi\n",
    );
}

fn slot_branch(s: &mut String, name: &str) {
    let left = left_var(name);
    let trial = trial_var(name);
    let _ = write!(
        s,
        "    if test \"${{skerry_next}}\" = \"{name}\"; then\n\
         \x20     if test \"${{{trial}}}\" = \"1\"; then\n\
         \x20       setenv skerry_save 1\n"
    );
    for n in (1..=MAX_TRIES).rev() {
        let keyword = if n == MAX_TRIES { "if" } else { "elif" };
        let _ = write!(
            s,
            "        {keyword} test \"${{{left}}}\" = \"{n}\"; then\n\
             \x20         setenv {left} {}\n\
             \x20         setenv skerry_slot {name}\n",
            n - 1
        );
    }
    let _ = write!(
        s,
        "        else\n\
         \x20         echo \"skerry: slot {name} used up its attempts; giving up its trial\"\n\
         \x20         setenv {trial}\n\
         \x20         setenv {left} 0\n\
         \x20       fi\n\
         \x20     elif test \"${{{left}}}\" -gt 0; then\n\
         \x20       setenv skerry_slot {name}\n\
         \x20     fi\n\
         \x20   fi\n"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_names_every_slot_and_the_boot_commands() {
        let slots = [SlotName::new("A").unwrap(), SlotName::new("B").unwrap()];
        let state = BootState::new(&slots, 3).unwrap();
        let text = boot_script(&state, "run boot_${skerry_slot}");
        for needle in [
            "for skerry_next in ${BOOT_ORDER}; do",
            "if test \"${SKERRY_B_TRIAL}\" = \"1\"; then",
            "elif test \"${BOOT_A_LEFT}\" = \"1\"; then",
            "setenv BOOT_A_LEFT 14",
            "setenv skerry_slot A\n",
            "run boot_${skerry_slot}\n",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in\n{text}");
        }
        assert_eq!(text.matches("\nfi\n").count(), 3, "{text}");
    }
}
