//! The generated GRUB fragment, as the simulation plays it.

use crate::grub::GrubEnvStore;
use crate::medium::Medium;
use crate::state::SlotName;
use crate::store::StoreError;

use super::Firmware;

/// GRUB running Skerry's `grub.cfg` fragment: it counts a trial's attempt down with
/// `save_env`, and gives a spent trial up at the next power-on (see
/// [`crate::grub::mapping::power_on`], which mirrors the fragment).
#[derive(Debug, Default)]
pub struct GrubFragment;

impl<M: Medium> Firmware<GrubEnvStore<M>> for GrubFragment {
    fn power_on(&mut self, store: &mut GrubEnvStore<M>) -> Result<SlotName, StoreError> {
        store.run_grub_fragment()
    }
}
