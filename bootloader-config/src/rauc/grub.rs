//! The boot state as GRUB environment variables, and what the generated `grub.cfg`
//! fragment does with them at power-on (mirrored here so the conformance suite checks the
//! fragment's rules against the pure model). The table is in [`crate::grub`]'s docs.

pub use crate::rauc::vars::Decision;
use crate::rauc::vars::{self, MappingError, Vars};
use crate::state::{BootState, SlotState, SlotStatus, MAX_TRIES};

/// RAUC's boot order variable.
pub const ORDER_VAR: &str = "ORDER";

/// RAUC's "slot is usable" flag of `slot`.
pub fn ok_var(slot: &str) -> String {
    format!("{slot}_OK")
}

/// RAUC's "slot was started and not yet marked good" flag of `slot`.
pub fn try_var(slot: &str) -> String {
    format!("{slot}_TRY")
}

/// Our attempts counter of a slot on trial; absent or empty for other slots.
pub fn left_var(slot: &str) -> String {
    format!("SKERRY_{slot}_LEFT")
}

fn is(env: &Vars, var: &str, value: &[u8]) -> bool {
    env.get_bytes(var.as_bytes()) == Some(value)
}

fn left<'a>(env: &'a Vars, slot: &str) -> Option<&'a [u8]> {
    env.get_bytes(left_var(slot).as_bytes())
        .filter(|v| !v.is_empty())
}

/// Reads the boot state. An environment written by plain RAUC tools (no `SKERRY_*`
/// variables) loads with RAUC's meaning: `OK=1 TRY=0` is good, `OK=1 TRY=1` (started,
/// never marked good) is a trial with no attempt left, anything else is bad.
pub fn read_state(env: &Vars) -> Result<BootState, MappingError> {
    let order = vars::slot_order(env, ORDER_VAR)?;
    let tries = vars::tries(env)?;
    let slots = order
        .into_iter()
        .map(|name| {
            let slot = name.as_str();
            let status = if !is(env, &ok_var(slot), b"1") {
                SlotStatus::Bad
            } else if is(env, &try_var(slot), b"1") {
                SlotStatus::Trial { tries_left: 0 }
            } else {
                match left(env, slot) {
                    None => SlotStatus::Good,
                    Some(raw) => SlotStatus::Trial {
                        tries_left: vars::canonical_count(&left_var(slot), raw)?,
                    },
                }
            };
            Ok(SlotState { name, status })
        })
        .collect::<Result<Vec<_>, MappingError>>()?;
    Ok(BootState::from_parts(slots, tries)?)
}

/// Writes `state` into `env`, leaving every other variable alone.
pub fn write_state(env: &mut Vars, state: &BootState) {
    vars::write_order_and_tries(env, ORDER_VAR, state);
    for slot in state.slots() {
        let name = slot.name.as_str();
        let (ok, tried, left) = match slot.status {
            SlotStatus::Good => ("1", "0", None),
            SlotStatus::Trial { tries_left: 0 } => ("1", "1", Some(0)),
            SlotStatus::Trial { tries_left } => ("1", "0", Some(tries_left)),
            SlotStatus::Bad => ("0", "0", None),
        };
        env.set(&ok_var(name), ok);
        env.set(&try_var(name), tried);
        match left {
            Some(n) => env.set(&left_var(name), &n.to_string()),
            None => env.remove(&left_var(name)),
        }
    }
}

/// Does to `env` exactly what [`grub_cfg`](crate::grub::grub_cfg) does: walk `ORDER`;
/// skip slots without `OK=1`; give up a slot with `TRY=1` (`OK=0 TRY=0`); start a slot
/// without a count unchanged; count a trial slot down through its table (reaching 0 sets
/// `TRY=1`, RAUC's "started once"); give up a trial whose count is not 1 to 15.
pub fn power_on(env: &mut Vars) -> Decision {
    let mut save = false;
    for slot in vars::script_order(env, ORDER_VAR) {
        let word = slot.as_str();
        if !is(env, &ok_var(word), b"1") {
            continue;
        }
        let count = if is(env, &try_var(word), b"1") {
            Err(())
        } else {
            match left(env, word) {
                None => {
                    return Decision {
                        slot: Some(slot),
                        save,
                    }
                }
                Some(raw) => vars::canonical_count(word, raw)
                    .ok()
                    .filter(|n| (1..=MAX_TRIES).contains(n))
                    .ok_or(()),
            }
        };
        save = true;
        match count {
            Ok(n) => {
                env.set(&left_var(word), &(n - 1).to_string());
                if n == 1 {
                    env.set(&try_var(word), "1");
                }
                return Decision {
                    slot: Some(slot),
                    save,
                };
            }
            Err(()) => {
                env.set(&ok_var(word), "0");
                env.set(&try_var(word), "0");
                env.set(&left_var(word), "");
            }
        }
    }
    Decision { slot: None, save }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rauc::checks::{self, names};
    use crate::state::SlotName;

    #[test]
    fn trial_counts_down_and_rolls_back_like_the_model() {
        let mut state = BootState::new(&names(&["A", "B"]), 4).unwrap();
        state.begin_trial(&SlotName::new("B").unwrap()).unwrap();
        let mut env = Vars::default();
        write_state(&mut env, &state);
        assert_eq!(env.get("ORDER"), Some(Ok("B A")));
        assert_eq!(env.get("B_OK"), Some(Ok("1")));
        assert_eq!(env.get("B_TRY"), Some(Ok("0")));
        assert_eq!(env.get("SKERRY_B_LEFT"), Some(Ok("4")));
        assert_eq!(read_state(&env).unwrap(), state);
        for _ in 0..6 {
            let expected = state.power_on().unwrap();
            assert_eq!(power_on(&mut env).slot, Some(expected));
            assert_eq!(read_state(&env).unwrap(), state);
        }
        assert_eq!(env.get("B_OK"), Some(Ok("0")));
    }

    #[test]
    fn last_attempt_looks_like_rauc_try() {
        let mut state = BootState::new(&names(&["A", "B"]), 1).unwrap();
        state.begin_trial(&SlotName::new("B").unwrap()).unwrap();
        let mut env = Vars::default();
        write_state(&mut env, &state);
        power_on(&mut env);
        // RAUC's scheme now sees B as started and not yet marked good.
        assert_eq!(env.get("B_OK"), Some(Ok("1")));
        assert_eq!(env.get("B_TRY"), Some(Ok("1")));
    }

    #[test]
    fn plain_rauc_environment_loads_with_rauc_meaning() {
        let mut env = Vars::default();
        env.set("ORDER", "B A");
        env.set("A_OK", "1");
        env.set("A_TRY", "0");
        env.set("B_OK", "1");
        env.set("B_TRY", "1");
        let state = read_state(&env).unwrap();
        assert_eq!(state.tries(), 3);
        assert_eq!(state.slots()[0].status, SlotStatus::Trial { tries_left: 0 });
        assert_eq!(state.slots()[1].status, SlotStatus::Good);
    }

    #[test]
    fn good_slot_starts_without_writing() {
        checks::good_slot_starts_without_writing(write_state, power_on);
    }
}
