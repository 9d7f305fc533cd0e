//! What a `skerryctl boot …` command reports: the slot table (or its JSON) after the
//! command, the slot a simulated power-on started, and a trial the command ended.

use serde::Serialize;
use skerry_boot_state::report::{slot_table, StatusReport};
use skerry_boot_state::{BootState, SlotName, SlotStatus};

use crate::output::Report;

/// The state after a boot command. Its JSON is `boot status --output json`'s shape, plus
/// `started` (simulate-boot) and `ended_trial` (a trial this command ended).
#[derive(Debug, Serialize)]
pub struct BootReport {
    #[serde(flatten)]
    state: StatusReport,
    #[serde(skip_serializing_if = "Option::is_none")]
    started: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ended_trial: Option<String>,
    #[serde(skip)]
    table: String,
}

impl BootReport {
    /// The state as it is.
    pub fn state(state: &BootState) -> Self {
        BootReport {
            state: StatusReport::new(state),
            started: None,
            ended_trial: None,
            table: slot_table(state),
        }
    }

    /// The state after a transition from `before`.
    pub fn changed(before: &BootState, after: &BootState) -> Self {
        let ended = before
            .trial()
            .filter(|t| after.status(t).is_ok_and(|s| s == SlotStatus::Bad));
        BootReport {
            ended_trial: ended.map(SlotName::to_string),
            ..BootReport::state(after)
        }
    }

    /// The state after a simulated power-on that started `slot`.
    pub fn started(slot: &SlotName, state: &BootState) -> Self {
        BootReport {
            started: Some(slot.to_string()),
            ..BootReport::state(state)
        }
    }
}

impl Report for BootReport {
    fn text(&self) -> String {
        // simulate-boot prints only the slot, so a script can read it without JSON.
        if let Some(slot) = &self.started {
            return format!("{slot}\n");
        }
        match &self.ended_trial {
            Some(trial) => format!(
                "{}the trial of slot {trial} is over: it is marked bad and will not be started\n",
                self.table
            ),
            None => self.table.clone(),
        }
    }
}
