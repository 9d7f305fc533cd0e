//! The generated U-Boot boot script, as the simulation plays it.

use crate::medium::Medium;
use crate::state::SlotName;
use crate::store::StoreError;
use crate::uboot::UbootEnvStore;

use super::Firmware;

/// U-Boot running Skerry's `boot.scr`: it counts a trial's attempt down, saves the
/// environment, and gives a spent trial up at the next power-on (see
/// [`crate::uboot::mapping::power_on`], which mirrors the script).
#[derive(Debug, Default)]
pub struct UbootScript;

impl<M: Medium> Firmware<UbootEnvStore<M>> for UbootScript {
    fn power_on(&mut self, store: &mut UbootEnvStore<M>) -> Result<SlotName, StoreError> {
        store.run_boot_script()
    }
}
