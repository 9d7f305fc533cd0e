//! The pure A/B boot-state machine.
//!
//! A slot is in one of three states:
//! - **good**: its image booted and passed health checks; the bootloader starts it
//!   without consuming tries, so power cuts can never use it up;
//! - **on trial**: a freshly installed image with a number of boot attempts left; the
//!   bootloader consumes one attempt every time it starts the slot, and gives the slot up
//!   (marks it bad) when no attempt is left;
//! - **bad**: never started.
//!
//! The boot order lists every slot; at power-on the bootloader starts the first slot in
//! that order that is good or on trial with attempts left.
//!
//! The invariant every transition keeps is that at least one slot is good, so there is
//! always something to fall back to. A transition that would break it is refused and
//! leaves the state unchanged.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The most boot attempts any backend can count (GPT's tries field is four bits wide).
pub const MAX_TRIES: u8 = 15;

/// The longest slot name we accept; names end up inside bootloader variable names.
const MAX_NAME_LEN: usize = 16;

/// A slot's name, as the bootloader knows it (`A`, `B`, `system0`).
///
/// Only ASCII letters, digits and `_` are allowed, because the name becomes part of
/// variable names such as `BOOT_A_LEFT` in U-Boot and `A_OK` in GRUB.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SlotName(String);

impl SlotName {
    /// Checks `raw` and wraps it.
    pub fn new(raw: &str) -> Result<Self, BootError> {
        let valid = !raw.is_empty()
            && raw.len() <= MAX_NAME_LEN
            && raw.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if valid {
            Ok(SlotName(raw.to_owned()))
        } else {
            Err(BootError::InvalidSlotName {
                name: raw.to_owned(),
            })
        }
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SlotName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for SlotName {
    type Err = BootError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SlotName::new(s)
    }
}

impl TryFrom<String> for SlotName {
    type Error = BootError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        SlotName::new(&s)
    }
}

impl From<SlotName> for String {
    fn from(name: SlotName) -> String {
        name.0
    }
}

/// Where a slot stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum SlotStatus {
    /// Booted and passed its health checks; started without consuming attempts.
    Good,
    /// Freshly installed; `tries_left` boot attempts remain.
    Trial { tries_left: u8 },
    /// Never started.
    Bad,
}

/// One slot and its status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotState {
    pub name: SlotName,
    pub status: SlotStatus,
}

/// Everything the bootloader needs to pick a slot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BootState {
    /// Every slot, in boot order: the bootloader tries them front to back.
    slots: Vec<SlotState>,
    /// Attempts a slot gets when its trial begins.
    tries: u8,
}

/// When a bootloader gives up a trial whose attempts are used up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GiveUp {
    /// At the first power-on after the last attempt: that power-on marks the trial bad
    /// and falls back (the generated U-Boot script and GRUB fragment). Until then the
    /// trial is on trial with 0 attempts left and can still be marked good.
    AfterLastAttempt,
    /// As the last attempt starts: the bootloader marks the slot bad (ChromeOS vboot sets
    /// its priority and tries to 0) and then starts it, so the slot goes to the back of
    /// the order at once and a spent trial is never seen. A trial with 0 attempts left
    /// that some other writer left behind is skipped and left as it is: vboot only
    /// writes the entry it starts.
    AtLastAttempt,
}

/// Why a transition or a state was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BootError {
    #[error("invalid slot name {name:?}: use 1 to 16 ASCII letters, digits or '_'")]
    InvalidSlotName { name: String },
    #[error("unknown slot {slot}; this device has slots {known}")]
    UnknownSlot { slot: String, known: String },
    #[error("slot {slot} is listed twice")]
    DuplicateSlot { slot: SlotName },
    #[error("a boot state needs at least two slots, got {count}")]
    TooFewSlots { count: usize },
    #[error("tries must be between 1 and {max}, got {tries}")]
    InvalidTries { tries: u8, max: u8 },
    #[error("refused: {action} slot {slot} would leave no known-good slot to fall back to")]
    NoGoodSlotLeft {
        action: &'static str,
        slot: SlotName,
    },
    #[error("refused: slot {slot} is good and slot {trial} is on trial; finish that trial first")]
    GoodSlotDuringTrial { slot: SlotName, trial: SlotName },
    #[error("refused: slot {trial} is already on trial; mark it good or bad first")]
    TrialInProgress { trial: SlotName },
    #[error(
        "refused: slot {slot} is bad; install an image and begin a trial before marking it good"
    )]
    MarkGoodOfBadSlot { slot: SlotName },
    #[error("the boot state has no good slot, so nothing is left to fall back to")]
    NoGoodSlot,
}

impl BootState {
    /// A freshly flashed device: the first slot holds the factory image and is good, the
    /// others are empty (bad). `tries` is the number of attempts a trial gets.
    pub fn new(slots: &[SlotName], tries: u8) -> Result<Self, BootError> {
        let mut entries: Vec<SlotState> = slots
            .iter()
            .map(|name| SlotState {
                name: name.clone(),
                status: SlotStatus::Bad,
            })
            .collect();
        if let Some(first) = entries.first_mut() {
            first.status = SlotStatus::Good;
        }
        BootState::from_parts(entries, tries)
    }

    /// Builds a state from slots in boot order, as a backend read them, and checks it.
    pub fn from_parts(slots: Vec<SlotState>, tries: u8) -> Result<Self, BootError> {
        let state = BootState { slots, tries };
        state.check()?;
        Ok(state)
    }

    /// Checks the invariants: two or more distinct slots, a valid try count, trial
    /// counters within it, and at least one good slot.
    pub fn check(&self) -> Result<(), BootError> {
        if self.slots.len() < 2 {
            return Err(BootError::TooFewSlots {
                count: self.slots.len(),
            });
        }
        if self.tries == 0 || self.tries > MAX_TRIES {
            return Err(BootError::InvalidTries {
                tries: self.tries,
                max: MAX_TRIES,
            });
        }
        for (i, slot) in self.slots.iter().enumerate() {
            if self.slots[..i].iter().any(|s| s.name == slot.name) {
                return Err(BootError::DuplicateSlot {
                    slot: slot.name.clone(),
                });
            }
            if let SlotStatus::Trial { tries_left } = slot.status {
                if tries_left > self.tries {
                    return Err(BootError::InvalidTries {
                        tries: tries_left,
                        max: self.tries,
                    });
                }
            }
        }
        if !self.slots.iter().any(|s| s.status == SlotStatus::Good) {
            return Err(BootError::NoGoodSlot);
        }
        Ok(())
    }

    /// The slots in boot order.
    pub fn slots(&self) -> &[SlotState] {
        &self.slots
    }

    /// The boot order, by name.
    pub fn order(&self) -> impl Iterator<Item = &SlotName> {
        self.slots.iter().map(|s| &s.name)
    }

    /// Attempts a slot gets when its trial begins.
    pub fn tries(&self) -> u8 {
        self.tries
    }

    /// The status of `slot`.
    pub fn status(&self, slot: &SlotName) -> Result<SlotStatus, BootError> {
        Ok(self.slots[self.index(slot)?].status)
    }

    /// The slot on trial, if any.
    pub fn trial(&self) -> Option<&SlotName> {
        self.slots
            .iter()
            .find(|s| matches!(s.status, SlotStatus::Trial { .. }))
            .map(|s| &s.name)
    }

    /// Whether the bootloader could start `status` at its next power-on.
    pub fn is_bootable(status: SlotStatus) -> bool {
        match status {
            SlotStatus::Good => true,
            SlotStatus::Trial { tries_left } => tries_left > 0,
            SlotStatus::Bad => false,
        }
    }

    /// Starts a trial of `slot` (its full image has just been written and verified): it
    /// gets [`tries`](Self::tries) attempts and goes to the front of the boot order.
    ///
    /// Refused while another slot is on trial, and when `slot` is the last good slot
    /// (the trial could then fail with nothing to fall back to).
    pub fn begin_trial(&mut self, slot: &SlotName) -> Result<(), BootError> {
        let i = self.index(slot)?;
        if let Some(trial) = self.trial() {
            if trial != slot {
                return Err(BootError::TrialInProgress {
                    trial: trial.clone(),
                });
            }
        }
        self.refuse_if_last_good(i, "beginning a trial of")?;
        let mut entry = self.slots.remove(i);
        entry.status = SlotStatus::Trial {
            tries_left: self.tries,
        };
        self.slots.insert(0, entry);
        Ok(())
    }

    /// Marks `slot` good: its trial passed. It goes to the front of the boot order.
    /// A bad slot cannot be marked good; it must be installed and tried first.
    ///
    /// Marking a slot that is already good while another slot is on trial means "stay on
    /// this slot": the trial ends, its slot is marked bad and goes to the back. Left on
    /// trial behind a good slot, it would never boot yet block every later trial.
    pub fn mark_good(&mut self, slot: &SlotName) -> Result<(), BootError> {
        let i = self.index(slot)?;
        if self.slots[i].status == SlotStatus::Bad {
            return Err(BootError::MarkGoodOfBadSlot { slot: slot.clone() });
        }
        if self.slots[i].status == SlotStatus::Good {
            if let Some(t) = self
                .slots
                .iter()
                .position(|s| matches!(s.status, SlotStatus::Trial { .. }))
            {
                let mut trial = self.slots.remove(t);
                trial.status = SlotStatus::Bad;
                self.slots.push(trial);
            }
        }
        let i = self.index(slot)?;
        let mut entry = self.slots.remove(i);
        entry.status = SlotStatus::Good;
        self.slots.insert(0, entry);
        Ok(())
    }

    /// Marks `slot` bad, so the bootloader never starts it; it goes to the back of the
    /// boot order. Refused for the last good slot, and for any good slot while another
    /// slot is on trial (the good slot is what that trial falls back to).
    pub fn mark_bad(&mut self, slot: &SlotName) -> Result<(), BootError> {
        let i = self.index(slot)?;
        if self.slots[i].status == SlotStatus::Good {
            if let Some(trial) = self.trial() {
                return Err(BootError::GoodSlotDuringTrial {
                    slot: slot.clone(),
                    trial: trial.clone(),
                });
            }
        }
        self.refuse_if_last_good(i, "marking bad")?;
        let mut entry = self.slots.remove(i);
        entry.status = SlotStatus::Bad;
        self.slots.push(entry);
        Ok(())
    }

    /// What the bootloader does at power-on: start the first bootable slot in boot order.
    /// A slot on trial uses up one attempt; a trial with no attempt left is given up
    /// (marked bad) and the bootloader falls back to the next slot.
    ///
    /// Because a good slot always exists, this always finds a slot. This is the rule of
    /// the generated U-Boot script and GRUB fragment ([`GiveUp::AfterLastAttempt`]); see
    /// [`power_on_with`](Self::power_on_with) for firmware that gives up earlier.
    pub fn power_on(&mut self) -> Result<SlotName, BootError> {
        self.power_on_with(GiveUp::AfterLastAttempt)
    }

    /// The bootloader's power-on step under `rule`: the two rules differ only in when a
    /// trial whose last attempt is used becomes bad.
    pub fn power_on_with(&mut self, rule: GiveUp) -> Result<SlotName, BootError> {
        match rule {
            GiveUp::AfterLastAttempt => self.power_on_giving_up_after_last_attempt(),
            GiveUp::AtLastAttempt => self.power_on_giving_up_at_last_attempt(),
        }
    }

    fn power_on_giving_up_at_last_attempt(&mut self) -> Result<SlotName, BootError> {
        let i = self
            .slots
            .iter()
            .position(|s| BootState::is_bootable(s.status))
            .ok_or(BootError::NoGoodSlot)?;
        let name = self.slots[i].name.clone();
        match self.slots[i].status {
            SlotStatus::Trial { tries_left: 1 } => {
                // Started with priority 0: on disk it is bad already, behind every
                // bootable slot. Only the boot now running can still mark it good.
                let mut entry = self.slots.remove(i);
                entry.status = SlotStatus::Bad;
                self.slots.push(entry);
            }
            SlotStatus::Trial { tries_left } => {
                self.slots[i].status = SlotStatus::Trial {
                    tries_left: tries_left - 1,
                };
            }
            SlotStatus::Good | SlotStatus::Bad => {}
        }
        Ok(name)
    }

    fn power_on_giving_up_after_last_attempt(&mut self) -> Result<SlotName, BootError> {
        for slot in &mut self.slots {
            match slot.status {
                SlotStatus::Good => return Ok(slot.name.clone()),
                SlotStatus::Trial { tries_left: 0 } => slot.status = SlotStatus::Bad,
                SlotStatus::Trial { tries_left } => {
                    slot.status = SlotStatus::Trial {
                        tries_left: tries_left - 1,
                    };
                    return Ok(slot.name.clone());
                }
                SlotStatus::Bad => {}
            }
        }
        Err(BootError::NoGoodSlot)
    }

    /// The slot the bootloader would start next, without changing anything.
    pub fn next_boot(&self) -> Option<&SlotName> {
        self.slots
            .iter()
            .find(|s| BootState::is_bootable(s.status))
            .map(|s| &s.name)
    }

    fn index(&self, slot: &SlotName) -> Result<usize, BootError> {
        self.slots
            .iter()
            .position(|s| &s.name == slot)
            .ok_or_else(|| BootError::UnknownSlot {
                slot: slot.to_string(),
                known: self
                    .slots
                    .iter()
                    .map(|s| s.name.as_str())
                    .collect::<Vec<_>>()
                    .join(","),
            })
    }

    fn refuse_if_last_good(&self, i: usize, action: &'static str) -> Result<(), BootError> {
        let other_good = self
            .slots
            .iter()
            .enumerate()
            .any(|(j, s)| j != i && s.status == SlotStatus::Good);
        if other_good {
            Ok(())
        } else {
            Err(BootError::NoGoodSlotLeft {
                action,
                slot: self.slots[i].name.clone(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ab() -> (SlotName, SlotName) {
        (SlotName::new("A").unwrap(), SlotName::new("B").unwrap())
    }

    #[test]
    fn fresh_device_boots_first_slot() {
        let (a, b) = ab();
        let mut s = BootState::new(&[a.clone(), b.clone()], 3).unwrap();
        assert_eq!(s.status(&b).unwrap(), SlotStatus::Bad);
        assert_eq!(s.power_on().unwrap(), a);
        assert_eq!(s.status(&a).unwrap(), SlotStatus::Good);
    }

    #[test]
    fn upgrade_trial_commit() {
        let (a, b) = ab();
        let mut s = BootState::new(&[a.clone(), b.clone()], 3).unwrap();
        s.begin_trial(&b).unwrap();
        assert_eq!(s.power_on().unwrap(), b);
        assert_eq!(s.status(&b).unwrap(), SlotStatus::Trial { tries_left: 2 });
        s.mark_good(&b).unwrap();
        assert_eq!(s.order().cloned().collect::<Vec<_>>(), vec![b.clone(), a]);
        assert_eq!(s.power_on().unwrap(), b);
    }

    #[test]
    fn failed_trial_rolls_back_after_its_tries() {
        let (a, b) = ab();
        let mut s = BootState::new(&[a.clone(), b.clone()], 3).unwrap();
        s.begin_trial(&b).unwrap();
        for _ in 0..3 {
            assert_eq!(s.power_on().unwrap(), b);
        }
        assert_eq!(s.power_on().unwrap(), a);
        assert_eq!(s.status(&b).unwrap(), SlotStatus::Bad);
    }

    #[test]
    fn refuses_to_lose_last_good_slot() {
        let (a, b) = ab();
        let mut s = BootState::new(&[a.clone(), b.clone()], 3).unwrap();
        let before = s.clone();
        assert!(matches!(
            s.mark_bad(&a),
            Err(BootError::NoGoodSlotLeft { .. })
        ));
        assert!(matches!(
            s.begin_trial(&a),
            Err(BootError::NoGoodSlotLeft { .. })
        ));
        assert!(matches!(
            s.mark_good(&b),
            Err(BootError::MarkGoodOfBadSlot { .. })
        ));
        assert_eq!(s, before);
    }

    #[test]
    fn mark_good_of_the_good_slot_ends_a_trial_instead_of_stranding_it() {
        let (a, b) = ab();
        let mut s = BootState::new(&[a.clone(), b.clone()], 3).unwrap();
        s.begin_trial(&b).unwrap();
        s.mark_good(&a).unwrap();
        assert_eq!(s.status(&b).unwrap(), SlotStatus::Bad);
        assert_eq!(s.trial(), None);
        assert_eq!(
            s.order().cloned().collect::<Vec<_>>(),
            vec![a.clone(), b.clone()]
        );
        assert_eq!(s.power_on().unwrap(), a);
        // Nothing is stranded: the next release can begin its trial.
        s.begin_trial(&b).unwrap();
        assert_eq!(s.power_on().unwrap(), b);
    }

    #[test]
    fn tries_outside_one_to_fifteen_are_refused() {
        let (a, b) = ab();
        for bad in [0, MAX_TRIES + 1] {
            assert!(matches!(
                BootState::new(&[a.clone(), b.clone()], bad),
                Err(BootError::InvalidTries { .. })
            ));
        }
        for good in [1, MAX_TRIES] {
            assert!(BootState::new(&[a.clone(), b.clone()], good).is_ok());
        }
    }

    #[test]
    fn a_second_trial_is_refused_and_the_same_trial_starts_afresh() {
        let (a, b) = ab();
        let c = SlotName::new("C").unwrap();
        let mut s = BootState::new(&[a.clone(), b.clone(), c.clone()], 3).unwrap();
        s.begin_trial(&b).unwrap();
        s.power_on().unwrap();
        let before = s.clone();
        assert!(matches!(
            s.begin_trial(&c),
            Err(BootError::TrialInProgress { trial }) if trial == b
        ));
        assert_eq!(s, before);
        // The same slot again (a reinstall): its attempts start afresh.
        s.begin_trial(&b).unwrap();
        assert_eq!(s.status(&b).unwrap(), SlotStatus::Trial { tries_left: 3 });
    }

    #[test]
    fn vboot_rule_gives_the_last_attempt_up_as_it_starts() {
        let (a, b) = ab();
        let mut s = BootState::new(&[a.clone(), b.clone()], 2).unwrap();
        s.begin_trial(&b).unwrap();
        assert_eq!(s.power_on_with(GiveUp::AtLastAttempt).unwrap(), b);
        assert_eq!(s.status(&b).unwrap(), SlotStatus::Trial { tries_left: 1 });
        // The last attempt starts B, which is bad at once and behind A.
        assert_eq!(s.power_on_with(GiveUp::AtLastAttempt).unwrap(), b);
        assert_eq!(s.status(&b).unwrap(), SlotStatus::Bad);
        assert_eq!(s.order().cloned().collect::<Vec<_>>(), vec![a.clone(), b]);
        assert_eq!(s.power_on_with(GiveUp::AtLastAttempt).unwrap(), a);
    }

    #[test]
    fn unknown_slot_is_named() {
        let (a, b) = ab();
        let mut s = BootState::new(&[a, b], 3).unwrap();
        let err = s.begin_trial(&SlotName::new("C").unwrap()).unwrap_err();
        assert_eq!(err.to_string(), "unknown slot C; this device has slots A,B");
    }

    #[test]
    fn slot_names_are_checked() {
        assert!(SlotName::new("system0").is_ok());
        for bad in ["", "A B", "a=b", "x".repeat(17).as_str(), "Ä"] {
            assert!(SlotName::new(bad).is_err(), "{bad:?} accepted");
        }
    }
}
