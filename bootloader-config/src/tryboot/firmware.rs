//! The Raspberry Pi firmware's side of tryboot, as the simulation plays it.
//!
//! `reboot "0 tryboot"` sets a one-shot flag that survives the reboot but not a power
//! cut. At the next boot the firmware reads `autoboot.txt`: with the flag set (and
//! `tryboot_a_b=1`) it boots `[tryboot]`'s `boot_partition` and clears the flag; without
//! it, `[all]`'s. So a trial gets exactly one boot, and whatever happens next (a hang, a
//! watchdog reset, a power cut) boots `[all]` again.
//!
//! The simulation needs the flag to outlive a process (each `skerryctl` call is one), so
//! it does not keep a flag of its own: the flag is set exactly when the record says the
//! first bootable slot is on trial with its one boot still ahead (`trial:1`), which is
//! the state an update engine leaves right before it runs `reboot "0 tryboot"`. Using
//! the boot clears it (the record turns to `trial:0`). A real device does the same
//! bookkeeping when it finds it has booted the `[tryboot]` partition.

use crate::state::{BootState, SlotStatus};

use super::autoboot::BootChoice;

/// The argument of `reboot` that arms the one-shot tryboot flag.
pub const TRYBOOT_REBOOT_ARG: &str = "0 tryboot";

/// Whether the next reboot must be (in the simulation: is) a tryboot reboot: the first
/// slot the model would start is on trial with its one try left.
pub fn tryboot_flag(state: &BootState) -> bool {
    state
        .slots()
        .iter()
        .find(|s| BootState::is_bootable(s.status))
        .is_some_and(|s| matches!(s.status, SlotStatus::Trial { .. }))
}

/// The partition the firmware boots given the file and the flag.
pub fn partition_to_boot(choice: &BootChoice, flag: bool) -> Option<u32> {
    if flag && choice.tryboot_a_b {
        choice.tryboot
    } else {
        choice.normal
    }
}
