//! The record comment: the part of the boot state `autoboot.txt`'s keys cannot say,
//! kept as one comment line the firmware ignores.
//!
//! ```text
//! # skerry-boot-state v1: B=trial:1 A=good C=bad
//! ```
//!
//! Slots are listed in boot order with their status; `trial:N` carries the tries left
//! (1 until the trial's one tryboot boot has happened, then 0).

use crate::state::{SlotName, SlotState, SlotStatus};

/// What every record line starts with.
pub const PREFIX: &str = "# skerry-boot-state";
const VERSION: &str = "v1:";

/// The record line for `slots` (in boot order).
pub fn render(slots: &[SlotState]) -> String {
    let mut line = format!("{PREFIX} {VERSION}");
    for slot in slots {
        let status = match slot.status {
            SlotStatus::Good => "good".to_owned(),
            SlotStatus::Bad => "bad".to_owned(),
            SlotStatus::Trial { tries_left } => format!("trial:{tries_left}"),
        };
        line.push_str(&format!(" {}={status}", slot.name));
    }
    line
}

/// Parses a record line back into slots in boot order.
pub fn parse(line: &str) -> Result<Vec<SlotState>, String> {
    let rest = line
        .trim()
        .strip_prefix(PREFIX)
        .ok_or_else(|| format!("{line:?} is not a {PREFIX} record"))?;
    let rest = rest.trim_start().strip_prefix(VERSION).ok_or_else(|| {
        format!("unknown record version in {line:?} (this build reads {VERSION})")
    })?;
    rest.split_whitespace()
        .map(|item| {
            let (name, status) = item
                .split_once('=')
                .ok_or_else(|| format!("record item {item:?} is not NAME=STATUS"))?;
            let name = SlotName::new(name).map_err(|e| e.to_string())?;
            let status = match status {
                "good" => SlotStatus::Good,
                "bad" => SlotStatus::Bad,
                other => {
                    let n = other
                        .strip_prefix("trial:")
                        .and_then(|n| n.parse::<u8>().ok())
                        .ok_or_else(|| format!("record item {item:?} has an unknown status"))?;
                    SlotStatus::Trial { tries_left: n }
                }
            };
            Ok(SlotState { name, status })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let slots = vec![
            SlotState {
                name: SlotName::new("B").unwrap(),
                status: SlotStatus::Trial { tries_left: 1 },
            },
            SlotState {
                name: SlotName::new("A").unwrap(),
                status: SlotStatus::Good,
            },
        ];
        let line = render(&slots);
        assert_eq!(line, "# skerry-boot-state v1: B=trial:1 A=good");
        assert_eq!(parse(&line).unwrap(), slots);
    }

    #[test]
    fn bad_records_are_named() {
        assert!(parse("# skerry-boot-state v2: A=good")
            .unwrap_err()
            .contains("version"));
        assert!(parse("# skerry-boot-state v1: A=great")
            .unwrap_err()
            .contains("unknown status"));
        assert!(parse("# skerry-boot-state v1: A")
            .unwrap_err()
            .contains("NAME=STATUS"));
        assert!(parse("# skerry-boot-state v1: A-B=good").is_err());
    }
}
