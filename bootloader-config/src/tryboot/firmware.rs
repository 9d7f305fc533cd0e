//! The Raspberry Pi firmware's side of tryboot, as the simulation plays it.
//!
//! `reboot "0 tryboot"` sets a one-shot flag that survives that reboot but not a power
//! cut. At the next boot the firmware reads `autoboot.txt`: with the flag set (and
//! `tryboot_a_b=1`) it boots `[tryboot]`'s `boot_partition` and clears the flag; without
//! it, `[all]`'s. The firmware writes nothing to the file. So a trial gets exactly one
//! boot, and whatever happens next (a hang, a watchdog reset, a power cut, a plain
//! reboot) boots `[all]` again.
//!
//! [`PiFirmware`] keeps the flag itself: [`Firmware::request_reboot`] with
//! [`TRYBOOT_REBOOT_ARG`] sets it, any other reboot request leaves it clear, a power cut
//! clears it, and every power-on uses it up. It is never derived from the file.
//!
//! The record comment is the running system's memory of what happened, and the running
//! system keeps it ([`record_boot`]): once started from the `[tryboot]` partition, the
//! trial's one boot is used (`trial:1` becomes `trial:0`); started from `[all]` after
//! the trial's boot was used, the trial failed and is given up (bad). Started from
//! `[all]` while the trial's boot is still ahead (the power was cut, or the reboot was a
//! plain one), nothing happened to the trial and nothing is written.

use crate::medium::Medium;
use crate::sim::Firmware;
use crate::state::{BootState, SlotName, SlotStatus};
use crate::store::StoreError;

use super::autoboot::BootChoice;
use super::TrybootStore;

/// The argument of `reboot` that arms the one-shot tryboot flag.
pub const TRYBOOT_REBOOT_ARG: &str = "0 tryboot";

/// The partition the firmware boots given the file and the flag.
pub fn partition_to_boot(choice: &BootChoice, flag: bool) -> Option<u32> {
    if flag && choice.tryboot_a_b {
        choice.tryboot
    } else {
        choice.normal
    }
}

/// What the running system records after the firmware started `booted` (from the
/// `[tryboot]` partition when `by_tryboot`): the new state, `None` when nothing is to be
/// recorded, or why the boot makes no sense for `state`.
pub fn record_boot(
    state: &BootState,
    booted: &SlotName,
    by_tryboot: bool,
) -> Result<Option<BootState>, String> {
    let mut next = state.clone();
    let expected = next.power_on().map_err(|e| e.to_string())?;
    if expected == *booted {
        return Ok((next != *state).then_some(next));
    }
    let trial_ahead = state.next_boot().is_some_and(
        |n| matches!(state.status(n), Ok(SlotStatus::Trial { tries_left }) if tries_left > 0),
    );
    let first_good = state
        .slots()
        .iter()
        .find(|s| s.status == SlotStatus::Good)
        .map(|s| &s.name);
    if !by_tryboot && trial_ahead && first_good == Some(booted) {
        return Ok(None);
    }
    Err(format!(
        "the firmware started slot {booted} ({}), but the record expects slot {expected}",
        if by_tryboot {
            "from [tryboot]"
        } else {
            "from [all]"
        }
    ))
}

/// The Raspberry Pi firmware with its one-shot tryboot flag, clear at first power-on.
#[derive(Debug, Default)]
pub struct PiFirmware {
    tryboot_flag: bool,
}

impl PiFirmware {
    /// Whether the next boot is a tryboot boot.
    pub fn tryboot_flag(&self) -> bool {
        self.tryboot_flag
    }
}

impl<M: Medium> Firmware<TrybootStore<M>> for PiFirmware {
    fn request_reboot(&mut self, arg: &str) {
        self.tryboot_flag = arg.trim() == TRYBOOT_REBOOT_ARG;
    }

    fn power_cut(&mut self) {
        self.tryboot_flag = false;
    }

    /// Boots by the file and the flag (clearing it), then records the boot as the
    /// running system does.
    fn power_on(&mut self, store: &mut TrybootStore<M>) -> Result<SlotName, StoreError> {
        let flag = std::mem::take(&mut self.tryboot_flag);
        let (state, choice) = store.read_with_choice()?;
        let partition = partition_to_boot(&choice, flag)
            .ok_or_else(|| store.corrupt("no boot_partition applies to this boot".into()))?;
        let booted = store.slot_at(partition).ok_or_else(|| {
            store.corrupt(format!(
                "the firmware would boot partition {partition}, which is no slot"
            ))
        })?;
        let by_tryboot = flag && choice.tryboot_a_b;
        if let Some(next) =
            record_boot(&state, &booted, by_tryboot).map_err(|e| store.corrupt(e))?
        {
            crate::store::BootStore::commit(store, &next)?;
        }
        Ok(booted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> SlotName {
        SlotName::new(s).unwrap()
    }

    fn trial_of_b() -> BootState {
        let mut s = BootState::new(&[name("A"), name("B")], 1).unwrap();
        s.begin_trial(&name("B")).unwrap();
        s
    }

    #[test]
    fn only_the_tryboot_argument_arms_the_flag() {
        let mut fw = PiFirmware::default();
        assert!(!fw.tryboot_flag());
        <PiFirmware as Firmware<TrybootStore<crate::MemoryMedium>>>::request_reboot(
            &mut fw,
            TRYBOOT_REBOOT_ARG,
        );
        assert!(fw.tryboot_flag());
        <PiFirmware as Firmware<TrybootStore<crate::MemoryMedium>>>::power_cut(&mut fw);
        assert!(!fw.tryboot_flag());
        <PiFirmware as Firmware<TrybootStore<crate::MemoryMedium>>>::request_reboot(&mut fw, "0");
        assert!(!fw.tryboot_flag());
    }

    #[test]
    fn the_record_follows_what_the_firmware_started() {
        let s = trial_of_b();
        // The tryboot boot of B uses its one boot.
        let used = record_boot(&s, &name("B"), true).unwrap().unwrap();
        assert_eq!(
            used.status(&name("B")).unwrap(),
            SlotStatus::Trial { tries_left: 0 }
        );
        // A plain boot before that: nothing happened to the trial.
        assert_eq!(record_boot(&s, &name("A"), false).unwrap(), None);
        // A plain boot after it: the trial failed.
        let failed = record_boot(&used, &name("A"), false).unwrap().unwrap();
        assert_eq!(failed.status(&name("B")).unwrap(), SlotStatus::Bad);
        // Booting the spent trial again is no boot the record can explain.
        assert!(record_boot(&used, &name("B"), true).is_err());
    }
}
