//! The `grub.cfg` fragment that picks the slot exactly as the model's power-on does, on
//! the variables of [`crate::grub::mapping`].
//!
//! GRUB's script has no arithmetic, so each slot's count goes down through a table of
//! literal comparisons from [`MAX_TRIES`] to 1: real N-try boot counting, where RAUC's
//! own GRUB script can only give a slot one try (rauc#1250).

use std::fmt::Write;

use crate::grub::envblk::{GEN_HEAD, GEN_TAIL};
use crate::grub::mapping::{left_var, ok_var, try_var, ORDER_VAR};
use crate::grub::store::SECOND_COPY_SUFFIX;
use crate::state::{BootState, SlotName, MAX_TRIES};

/// The prefix of the menu entry id the fragment selects: give each slot's entry
/// `--id skerry-<slot>`.
pub const MENU_ID_PREFIX: &str = "skerry-";

/// The fragment for the slots of `slots` (the state a device is initialised with: its
/// slot names, and its first slot, which the fragment starts when the environment holds
/// no bootable slot). `env_file` is what follows `load_env -f`/`save_env -f` (GRUB words,
/// e.g. `"${prefix}/grubenv"`); `None` uses GRUB's default `$prefix/grubenv`.
///
/// The fragment sets `default` to `skerry-<slot>` and `skerry_slot` to the slot name (for
/// a `rauc.slot=$skerry_slot` kernel argument); the menu entries follow it.
pub fn grub_cfg(slots: &BootState, env_file: Option<&str>) -> String {
    let names: Vec<&SlotName> = slots.order().collect();
    let fallback = names[0].as_str();
    let list: Vec<&str> = names.iter().map(|n| n.as_str()).collect();
    let file = env_file.map(|f| format!(" -f {f}")).unwrap_or_default();
    // The second copy beside the block (see `crate::grub::store`), loaded when the block
    // is torn: its generations at head and tail differ.
    let second = format!(
        " -f {}{SECOND_COPY_SUFFIX}",
        env_file.unwrap_or("$prefix/grubenv")
    );
    let mut s = String::new();
    // Writing to a String cannot fail.
    let _ = write!(
        s,
        "# Skerry A/B slot selection for GRUB; generated for slots {list}, do not edit.\n\
         # Reads RAUC's {ORDER_VAR}, <slot>_OK and <slot>_TRY plus SKERRY_<slot>_LEFT. A good\n\
         # slot starts without using an attempt; a slot on trial uses one; a trial with\n\
         # none left is given up. The environment is saved only when it changed.\n\
         load_env{file}\n\
         if [ \"${GEN_HEAD}\" != \"${GEN_TAIL}\" ]; then\n\
         \x20 echo \"skerry: the environment block is torn; loading its second copy\"\n\
         \x20 load_env{second}\n\
         fi\n\
         skerry_slot=\"\"\n\
         skerry_save=\"\"\n\
         for skerry_next in ${ORDER_VAR}; do\n\
         \x20 if [ -z \"$skerry_slot\" ]; then\n",
        list = list.join(" "),
    );
    for name in &list {
        slot_branch(&mut s, name);
    }
    let saved: Vec<String> = list
        .iter()
        .flat_map(|n| [ok_var(n), try_var(n), left_var(n)])
        .collect();
    let _ = write!(
        s,
        "  fi\n\
         done\n\
         if [ -z \"$skerry_slot\" ]; then\n\
         \x20 echo \"skerry: no bootable slot in {ORDER_VAR} ($ORDER); starting {fallback}, environment unchanged\"\n\
         \x20 skerry_slot={fallback}\n\
         \x20 skerry_save=\"\"\n\
         fi\n\
         if [ -n \"$skerry_save\" ]; then\n\
         \x20 if [ -n \"${GEN_HEAD}\" ]; then\n\
         \x20   if [ \"${GEN_HEAD}\" = 0 ]; then {GEN_HEAD}=1\n\
         \x20   elif [ \"${GEN_HEAD}\" = 1 ]; then {GEN_HEAD}=2\n\
         \x20   else {GEN_HEAD}=0; fi\n\
         \x20   {GEN_TAIL}=${GEN_HEAD}\n\
         \x20 fi\n\
         \x20 if save_env{file} {saved} {GEN_HEAD} {GEN_TAIL}; then\n\
         \x20   skerry_save=\"\"\n\
         \x20 fi\n\
         fi\n",
        saved = saved.join(" "),
    );
    unsaved_fallback(&mut s, &list);
    let _ = write!(
        s,
        "echo \"skerry: starting slot $skerry_slot\"\n\
         default=\"{MENU_ID_PREFIX}$skerry_slot\"\n"
    );
    s
}

/// When `save_env` failed (`skerry_save` still set), the attempt just counted is not on
/// the disk: starting a trial now would start it again with the same count on the next
/// power-on, forever. So the first good slot of the order starts instead; only with no
/// good slot at all does the chosen slot start unsaved (there is nothing better to start).
fn unsaved_fallback(s: &mut String, list: &[&str]) {
    let _ = write!(
        s,
        "if [ -n \"$skerry_save\" ]; then\n\
         \x20 skerry_save=\"\"\n\
         \x20 skerry_good=\"\"\n\
         \x20 for skerry_next in ${ORDER_VAR}; do\n\
         \x20   if [ -z \"$skerry_good\" ]; then\n"
    );
    for name in list {
        let (ok, tr, left) = (ok_var(name), try_var(name), left_var(name));
        let _ = write!(
            s,
            "      if [ \"$skerry_next\" = \"{name}\" ]; then\n\
             \x20       if [ \"${ok}\" = \"1\" ]; then\n\
             \x20         if [ \"${tr}\" != \"1\" ]; then\n\
             \x20           if [ -z \"${left}\" ]; then\n\
             \x20             skerry_good={name}\n\
             \x20           fi\n\
             \x20         fi\n\
             \x20       fi\n\
             \x20     fi\n"
        );
    }
    let _ = write!(
        s,
        "    fi\n\
         \x20 done\n\
         \x20 if [ -n \"$skerry_good\" ]; then\n\
         \x20   echo \"skerry: saving the environment failed; starting known-good slot $skerry_good instead of $skerry_slot\"\n\
         \x20   skerry_slot=$skerry_good\n\
         \x20 else\n\
         \x20   echo \"skerry: saving the environment failed and no slot is known good; starting $skerry_slot with its attempt unsaved\"\n\
         \x20 fi\n\
         fi\n"
    );
}

fn give_up(s: &mut String, name: &str, indent: &str) {
    let _ = write!(
        s,
        "{indent}echo \"skerry: slot {name} used up its attempts; giving up its trial\"\n\
         {indent}{ok}=0\n\
         {indent}{tr}=0\n\
         {indent}{left}=\"\"\n\
         {indent}skerry_save=1\n",
        ok = ok_var(name),
        tr = try_var(name),
        left = left_var(name),
    );
}

fn slot_branch(s: &mut String, name: &str) {
    let (ok, tr, left) = (ok_var(name), try_var(name), left_var(name));
    let body = "          ";
    let _ = write!(
        s,
        "    if [ \"$skerry_next\" = \"{name}\" ]; then\n\
         \x20     if [ \"${ok}\" = \"1\" ]; then\n\
         \x20       if [ \"${tr}\" = \"1\" ]; then\n"
    );
    give_up(s, name, body);
    let _ = write!(
        s,
        "        elif [ -z \"${left}\" ]; then\n\
         {body}skerry_slot={name}\n"
    );
    for n in (1..=MAX_TRIES).rev() {
        let _ = write!(
            s,
            "        elif [ \"${left}\" = \"{n}\" ]; then\n\
             {body}{left}={}\n",
            n - 1
        );
        if n == 1 {
            let _ = writeln!(s, "{body}{tr}=1");
        }
        let _ = write!(s, "{body}skerry_slot={name}\n{body}skerry_save=1\n");
    }
    s.push_str("        else\n");
    give_up(s, name, body);
    s.push_str("        fi\n      fi\n    fi\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fragment_counts_down_without_arithmetic() {
        let slots = [SlotName::new("A").unwrap(), SlotName::new("B").unwrap()];
        let state = BootState::new(&slots, 3).unwrap();
        let text = grub_cfg(&state, Some("${prefix}/grubenv"));
        for needle in [
            "load_env -f ${prefix}/grubenv\n",
            "for skerry_next in $ORDER; do",
            "elif [ \"$SKERRY_B_LEFT\" = \"15\" ]; then\n          SKERRY_B_LEFT=14\n",
            "SKERRY_A_LEFT=0\n          A_TRY=1\n",
            "if save_env -f ${prefix}/grubenv A_OK A_TRY SKERRY_A_LEFT B_OK B_TRY SKERRY_B_LEFT \
             SKERRY_GEN_HEAD SKERRY_GEN_TAIL; then\n",
            "if [ \"$SKERRY_GEN_HEAD\" != \"$SKERRY_GEN_TAIL\" ]; then\n  echo \"skerry: the environment \
             block is torn; loading its second copy\"\n  load_env -f ${prefix}/grubenv.b\n",
            "default=\"skerry-$skerry_slot\"",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in\n{text}");
        }
        assert!(!text.contains("expr"), "no arithmetic in GRUB");
    }
}
