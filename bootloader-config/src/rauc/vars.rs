//! An ordered list of bootloader environment variables, kept as bytes so that variables
//! we do not own (`bootcmd`, a board's settings, non-UTF-8 values) survive a rewrite
//! untouched and in their order, and what the U-Boot and the GRUB mapping share: the
//! value parsing, the order and tries variables, and the power-on walk of the order
//! their generated scripts do.

use crate::state::{BootError, BootState, SlotName, MAX_TRIES};

/// Why variables do not describe a boot state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MappingError {
    #[error("no {var} variable: the environment holds no boot state yet (initialise it first)")]
    Missing { var: String },
    #[error("{var}={value:?} is not {expected}")]
    BadValue {
        var: String,
        value: String,
        expected: &'static str,
    },
    #[error(transparent)]
    State(#[from] BootError),
}

/// Boot attempts assumed when an environment written by plain RAUC tools has no
/// `SKERRY_TRIES`: RAUC's default `boot-attempts`.
pub const RAUC_DEFAULT_TRIES: u8 = 3;

/// The variable that persists the configured number of tries, in both environments.
pub const TRIES_VAR: &str = "SKERRY_TRIES";

fn bad_value(var: &str, value: &[u8], expected: &'static str) -> MappingError {
    MappingError::BadValue {
        var: var.to_owned(),
        value: String::from_utf8_lossy(value).into_owned(),
        expected,
    }
}

/// Reads a canonical decimal count (`0`, `1`, ... `255`, no sign, no leading zero):
/// exactly the spellings the generated scripts compare against.
pub fn canonical_count(var: &str, value: &[u8]) -> Result<u8, MappingError> {
    let text = std::str::from_utf8(value).map_err(|_| bad_value(var, value, "a decimal number"))?;
    match text.parse::<u8>() {
        Ok(n) if n.to_string() == text => Ok(n),
        _ => Err(bad_value(
            var,
            value,
            "a decimal number without sign or leading zeros",
        )),
    }
}

/// Reads the slot list of an order variable (`BOOT_ORDER`, `ORDER`): names separated by
/// spaces.
pub fn slot_order(vars: &Vars, var: &str) -> Result<Vec<SlotName>, MappingError> {
    let raw = vars
        .get_bytes(var.as_bytes())
        .ok_or(MappingError::Missing {
            var: var.to_owned(),
        })?;
    let text = std::str::from_utf8(raw).map_err(|_| bad_value(var, raw, "a list of slot names"))?;
    text.split_ascii_whitespace()
        .map(|name| SlotName::new(name).map_err(MappingError::from))
        .collect()
}

/// Reads `SKERRY_TRIES`, or RAUC's default when a plain RAUC environment has none.
pub fn tries(vars: &Vars) -> Result<u8, MappingError> {
    match vars.get_bytes(TRIES_VAR.as_bytes()) {
        None => Ok(RAUC_DEFAULT_TRIES),
        Some(raw) => {
            let n = canonical_count(TRIES_VAR, raw)?;
            if n == 0 || n > MAX_TRIES {
                return Err(bad_value(TRIES_VAR, raw, "between 1 and 15"));
            }
            Ok(n)
        }
    }
}

/// Writes the slot order into `order_var` (names separated by spaces) and the configured
/// tries into [`TRIES_VAR`]: the part of a state both environments store alike, read
/// back by [`slot_order`] and [`tries`].
pub fn write_order_and_tries(vars: &mut Vars, order_var: &str, state: &BootState) {
    let order: Vec<&str> = state.order().map(SlotName::as_str).collect();
    vars.set(order_var, &order.join(" "));
    vars.set(TRIES_VAR, &state.tries().to_string());
}

/// The slots a generated boot script walks at power-on: the words of `order_var` that are
/// slot names (the script only knows the slots it was generated for, all valid names),
/// in order; none when the variable is absent. Unlike [`slot_order`] this never fails:
/// the script boots whatever the variable holds.
pub fn script_order(vars: &Vars, order_var: &str) -> Vec<SlotName> {
    let raw = vars.get_bytes(order_var.as_bytes()).unwrap_or_default();
    String::from_utf8_lossy(raw)
        .split_ascii_whitespace()
        .filter_map(|word| SlotName::new(word).ok())
        .collect()
}

/// What a generated boot script (U-Boot's or GRUB's) decided at power-on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The slot started, or `None` when nothing in the order variable is bootable (the
    /// script then starts its fallback slot and leaves the environment alone).
    pub slot: Option<SlotName>,
    /// Whether the script saves the environment.
    pub save: bool,
}

/// Variables in the order they were read; new ones are appended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Vars {
    entries: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Vars {
    /// The value of `name` as bytes.
    pub fn get_bytes(&self, name: &[u8]) -> Option<&[u8]> {
        self.entries
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }

    /// The value of `name`; a value that is not UTF-8 reads as `Err` with the raw bytes.
    pub fn get(&self, name: &str) -> Option<Result<&str, &[u8]>> {
        self.get_bytes(name.as_bytes())
            .map(|v| std::str::from_utf8(v).map_err(|_| v))
    }

    /// Sets `name`, keeping its place if it exists.
    pub fn set(&mut self, name: &str, value: &str) {
        match self.entries.iter_mut().find(|(n, _)| n == name.as_bytes()) {
            Some(entry) => entry.1 = value.as_bytes().to_vec(),
            None => self.push(name.as_bytes().to_vec(), value.as_bytes().to_vec()),
        }
    }

    /// Removes `name` if present.
    pub fn remove(&mut self, name: &str) {
        self.entries.retain(|(n, _)| n != name.as_bytes());
    }

    /// Appends a variable as read (the caller checked it is not there yet).
    pub fn push(&mut self, name: Vec<u8>, value: Vec<u8>) {
        self.entries.push((name, value));
    }

    /// Every variable, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.entries
            .iter()
            .map(|(n, v)| (n.as_slice(), v.as_slice()))
    }

    /// Whether there are no variables.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_keeps_order_and_replaces() {
        let mut v = Vars::default();
        v.set("a", "1");
        v.set("b", "2");
        v.set("a", "3");
        v.remove("c");
        let names: Vec<&[u8]> = v.iter().map(|(n, _)| n).collect();
        assert_eq!(names, vec![b"a".as_slice(), b"b".as_slice()]);
        assert_eq!(v.get("a"), Some(Ok("3")));
        v.remove("a");
        assert_eq!(v.get("a"), None);
    }

    #[test]
    fn order_and_tries_round_trip_and_scripts_skip_what_is_not_a_slot() {
        let slots = [SlotName::new("A").unwrap(), SlotName::new("B").unwrap()];
        let mut state = BootState::new(&slots, 7).unwrap();
        state.begin_trial(&slots[1]).unwrap();
        let mut v = Vars::default();
        write_order_and_tries(&mut v, "ORDER", &state);
        assert_eq!(v.get("ORDER"), Some(Ok("B A")));
        assert_eq!(
            slot_order(&v, "ORDER").unwrap(),
            vec![slots[1].clone(), slots[0].clone()]
        );
        assert_eq!(tries(&v).unwrap(), 7);
        assert_eq!(script_order(&v, "ORDER"), slot_order(&v, "ORDER").unwrap());
        // A script walks past words that are no slot name; the loader refuses them.
        v.set("ORDER", "  B  no/slot A ");
        assert_eq!(
            script_order(&v, "ORDER"),
            vec![slots[1].clone(), slots[0].clone()]
        );
        assert!(slot_order(&v, "ORDER").is_err());
        assert!(script_order(&v, "MISSING").is_empty());
    }
}
