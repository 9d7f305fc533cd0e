//! How a boot state reads to a person (a table) and to a script (JSON).

use serde::Serialize;

use crate::state::{BootState, SlotStatus};

/// The JSON shape of `skerryctl boot status --output json`.
#[derive(Debug, Serialize)]
pub struct StatusReport {
    /// Slot names in boot order.
    pub order: Vec<String>,
    /// Attempts a trial gets.
    pub tries: u8,
    /// The slot the bootloader starts next.
    pub next_boot: Option<String>,
    pub slots: Vec<SlotReport>,
}

/// One slot in a [`StatusReport`].
#[derive(Debug, Serialize)]
pub struct SlotReport {
    pub name: String,
    /// `good`, `trial` or `bad`.
    pub status: &'static str,
    pub good: bool,
    /// Attempts left before the bootloader gives the slot up: the full budget for a good
    /// slot (the bootloader never consumes them), the remainder for a trial, 0 if bad.
    pub tries_left: u8,
    pub bootable: bool,
}

impl StatusReport {
    pub fn new(state: &BootState) -> Self {
        StatusReport {
            order: state.order().map(|n| n.to_string()).collect(),
            tries: state.tries(),
            next_boot: state.next_boot().map(|n| n.to_string()),
            slots: state
                .slots()
                .iter()
                .map(|s| SlotReport {
                    name: s.name.to_string(),
                    status: match s.status {
                        SlotStatus::Good => "good",
                        SlotStatus::Trial { .. } => "trial",
                        SlotStatus::Bad => "bad",
                    },
                    good: s.status == SlotStatus::Good,
                    tries_left: match s.status {
                        SlotStatus::Good => state.tries(),
                        SlotStatus::Trial { tries_left } => tries_left,
                        SlotStatus::Bad => 0,
                    },
                    bootable: BootState::is_bootable(s.status),
                })
                .collect(),
        }
    }
}

/// A table in plain words: one line per slot in boot order, then the next boot.
pub fn slot_table(state: &BootState) -> String {
    let next = state.next_boot();
    let mut out = String::from("  order  slot      state\n");
    for (i, slot) in state.slots().iter().enumerate() {
        let words = match slot.status {
            SlotStatus::Good => "good (known to work; starts without using attempts)".to_owned(),
            SlotStatus::Trial { tries_left: 0 } => {
                "on trial, no attempts left (given up at next power-on)".to_owned()
            }
            SlotStatus::Trial { tries_left } => format!(
                "on trial, {tries_left} of {} boot attempt{} left",
                state.tries(),
                if state.tries() == 1 { "" } else { "s" }
            ),
            SlotStatus::Bad => "bad (the bootloader skips it)".to_owned(),
        };
        let arrow = if Some(&slot.name) == next { "→" } else { " " };
        out.push_str(&format!(
            "{arrow} {:>5}  {:<8}  {words}\n",
            i + 1,
            slot.name.as_str()
        ));
    }
    match next {
        Some(n) => out.push_str(&format!("  next power-on starts slot {n}\n")),
        None => out.push_str("  no slot can start\n"),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::SlotName;

    #[test]
    fn json_has_the_documented_fields() {
        let a = SlotName::new("A").unwrap();
        let b = SlotName::new("B").unwrap();
        let mut s = BootState::new(&[a, b.clone()], 3).unwrap();
        s.begin_trial(&b).unwrap();
        s.power_on().unwrap();
        let json = serde_json::to_value(StatusReport::new(&s)).unwrap();
        assert_eq!(json["order"], serde_json::json!(["B", "A"]));
        assert_eq!(json["slots"][0]["name"], "B");
        assert_eq!(json["slots"][0]["good"], false);
        assert_eq!(json["slots"][0]["tries_left"], 2);
        assert_eq!(json["slots"][1]["good"], true);
        assert_eq!(json["next_boot"], "B");
        let table = slot_table(&s);
        assert!(
            table.contains("on trial, 2 of 3 boot attempts left"),
            "{table}"
        );
        assert!(table.contains("next power-on starts slot B"), "{table}");
    }
}
