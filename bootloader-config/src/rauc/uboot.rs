//! The boot state as U-Boot environment variables, and what the generated boot script
//! does with them at power-on (mirrored here so the conformance suite checks the script's
//! rules against the pure model). The table of the mapping is in the module docs of
//! [`crate::uboot`].

pub use crate::rauc::vars::Decision;
use crate::rauc::vars::{self, MappingError, Vars};
use crate::state::{BootState, SlotName, SlotState, SlotStatus, MAX_TRIES};

/// RAUC's boot order variable.
pub const ORDER_VAR: &str = "BOOT_ORDER";

/// RAUC's attempts counter of `slot`.
pub fn left_var(slot: &str) -> String {
    format!("BOOT_{slot}_LEFT")
}

/// Our marker of a slot on trial (`1`); without it a slot with attempts left is good.
pub fn trial_var(slot: &str) -> String {
    format!("SKERRY_{slot}_TRIAL")
}

fn is_trial(env: &Vars, slot: &str) -> bool {
    env.get_bytes(trial_var(slot).as_bytes()) == Some(b"1")
}

/// Slots that have a `BOOT_<slot>_LEFT` but are missing from `BOOT_ORDER`: RAUC's
/// mark-bad takes a slot out of the order, and neither RAUC's script nor ours starts it.
fn slots_outside_order(env: &Vars, order: &[SlotName]) -> Vec<SlotName> {
    env.iter()
        .filter_map(|(name, _)| {
            let middle = name.strip_prefix(b"BOOT_")?.strip_suffix(b"_LEFT")?;
            let slot = SlotName::new(std::str::from_utf8(middle).ok()?).ok()?;
            (!order.contains(&slot)).then_some(slot)
        })
        .collect()
}

/// Reads the boot state. An environment written by plain RAUC tools (no `SKERRY_*`
/// variables) loads with RAUC's meaning: attempts left means good, none means bad, and
/// a slot missing from `BOOT_ORDER` (RAUC's mark-bad removes it) is bad, at the end.
pub fn read_state(env: &Vars) -> Result<BootState, MappingError> {
    let order = vars::slot_order(env, ORDER_VAR)?;
    let tries = vars::tries(env)?;
    let outside = slots_outside_order(env, &order);
    let bad = outside.into_iter().map(|name| SlotState {
        name,
        status: SlotStatus::Bad,
    });
    let slots = order
        .into_iter()
        .map(|name| {
            let var = left_var(name.as_str());
            let left = match env.get_bytes(var.as_bytes()) {
                Some(raw) => Some(vars::canonical_count(&var, raw)?),
                None => None,
            };
            let status = match (is_trial(env, name.as_str()), left) {
                (true, Some(tries_left)) => SlotStatus::Trial { tries_left },
                (true, None) => return Err(MappingError::Missing { var }),
                (false, Some(n)) if n > 0 => SlotStatus::Good,
                (false, _) => SlotStatus::Bad,
            };
            Ok(SlotState { name, status })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(BootState::from_parts(
        slots.into_iter().chain(bad).collect(),
        tries,
    )?)
}

/// Writes `state` into `env`, leaving every other variable alone.
pub fn write_state(env: &mut Vars, state: &BootState) {
    vars::write_order_and_tries(env, ORDER_VAR, state);
    for slot in state.slots() {
        let name = slot.name.as_str();
        let (left, trial) = match slot.status {
            SlotStatus::Good => (state.tries(), false),
            SlotStatus::Trial { tries_left } => (tries_left, true),
            SlotStatus::Bad => (0, false),
        };
        env.set(&left_var(name), &left.to_string());
        if trial {
            env.set(&trial_var(name), "1");
        } else {
            env.remove(&trial_var(name));
        }
    }
}

/// Does to `env` exactly what [`boot_script`](crate::uboot::boot_script) does at
/// power-on: walk `BOOT_ORDER`; a trial slot with a count of 1 to 15 loses one attempt
/// and starts, a trial slot with any other count is given up (marker removed, count 0);
/// a slot without the marker and a positive count starts without changes.
pub fn power_on(env: &mut Vars) -> Decision {
    let mut save = false;
    for slot in vars::script_order(env, ORDER_VAR) {
        let word = slot.as_str();
        let left_name = left_var(word);
        let left = env.get_bytes(left_name.as_bytes()).map(<[u8]>::to_vec);
        if is_trial(env, word) {
            let count = left.and_then(|raw| vars::canonical_count(&left_name, &raw).ok());
            save = true;
            match count {
                Some(n) if (1..=MAX_TRIES).contains(&n) => {
                    env.set(&left_name, &(n - 1).to_string());
                    return Decision {
                        slot: Some(slot),
                        save,
                    };
                }
                _ => {
                    env.remove(&trial_var(word));
                    env.set(&left_name, "0");
                }
            }
        } else if left.as_deref().is_some_and(leading_number_positive) {
            return Decision {
                slot: Some(slot),
                save,
            };
        }
    }
    Decision { slot: None, save }
}

/// U-Boot's `test X -gt 0` reads the leading decimal digits of `X` (simple_strtol).
fn leading_number_positive(raw: &[u8]) -> bool {
    raw.iter()
        .take_while(|b| b.is_ascii_digit())
        .any(|&b| b != b'0')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rauc::checks::{self, names};

    #[test]
    fn every_status_round_trips() {
        let mut state = BootState::new(&names(&["A", "B", "C"]), 5).unwrap();
        state.begin_trial(&SlotName::new("B").unwrap()).unwrap();
        let mut env = Vars::default();
        env.set("bootcmd", "run x");
        write_state(&mut env, &state);
        assert_eq!(env.get("BOOT_ORDER"), Some(Ok("B A C")));
        assert_eq!(env.get("BOOT_B_LEFT"), Some(Ok("5")));
        assert_eq!(env.get("SKERRY_B_TRIAL"), Some(Ok("1")));
        assert_eq!(env.get("BOOT_A_LEFT"), Some(Ok("5")));
        assert_eq!(env.get("BOOT_C_LEFT"), Some(Ok("0")));
        assert_eq!(env.get("bootcmd"), Some(Ok("run x")));
        assert_eq!(read_state(&env).unwrap(), state);
        for _ in 0..6 {
            let mut model = state.clone();
            let expected = model.power_on().unwrap();
            let decision = power_on(&mut env);
            assert_eq!(decision.slot, Some(expected));
            assert_eq!(read_state(&env).unwrap(), model);
            state = model;
        }
        assert_eq!(
            state.status(&SlotName::new("B").unwrap()).unwrap(),
            SlotStatus::Bad
        );
    }

    #[test]
    fn plain_rauc_environment_loads_with_rauc_meaning() {
        let mut env = Vars::default();
        env.set("BOOT_ORDER", "B A");
        env.set("BOOT_A_LEFT", "3");
        env.set("BOOT_B_LEFT", "0");
        let state = read_state(&env).unwrap();
        assert_eq!(state.tries(), 3);
        assert_eq!(state.slots()[0].status, SlotStatus::Bad);
        assert_eq!(state.slots()[1].status, SlotStatus::Good);
    }

    #[test]
    fn slot_rauc_took_out_of_the_order_is_bad() {
        // What `rauc status mark-bad B` leaves (checked in tests/uboot_rauc.rs).
        let mut env = Vars::default();
        env.set("BOOT_A_LEFT", "3");
        env.set("BOOT_B_LEFT", "3");
        env.set("BOOT_ORDER", "A");
        let state = read_state(&env).unwrap();
        let order: Vec<&str> = state.order().map(SlotName::as_str).collect();
        assert_eq!(order, ["A", "B"]);
        assert_eq!(state.slots()[1].status, SlotStatus::Bad);
    }

    #[test]
    fn good_slot_starts_without_writing() {
        checks::good_slot_starts_without_writing(write_state, power_on);
    }

    #[test]
    fn bad_values_are_named() {
        let mut env = Vars::default();
        env.set("BOOT_ORDER", "A B");
        env.set("BOOT_A_LEFT", "03");
        let err = read_state(&env).unwrap_err().to_string();
        assert!(err.contains("BOOT_A_LEFT"), "{err}");
        env.set("BOOT_A_LEFT", "3");
        env.set("SKERRY_B_TRIAL", "1");
        let err = read_state(&env).unwrap_err().to_string();
        assert!(err.contains("BOOT_B_LEFT"), "{err}");
        assert!(read_state(&Vars::default()).is_err());
    }
}
