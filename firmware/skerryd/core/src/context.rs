//! What every subsystem gets when it registers its controllers: the machine's layout and
//! board, the boot state as found at start, the `/var` area this start works in, the
//! runtime's state, the event log, the watchdog's vitals and power. Time, hardware and
//! shutdown come in from here, so each subsystem runs in a test with fakes.

use std::sync::Arc;

use skerry_boot_state::{BootState, SlotName, StoreSpec};
use skerry_runtime::State;
use skerry_watchdog::gate::Vitals;
use tokio::sync::watch;

use crate::events::EventLog;
use crate::formats::VarArea;
use crate::hw::Power;
use crate::layout::{BoardDefinition, Layout};

/// The boot state as the daemon found it at start.
#[derive(Debug, Clone)]
pub struct BootView {
    /// The boot store, with paths resolved under the root.
    pub spec: StoreSpec,
    /// The slot the bootloader started (from the command line); `None` when unknown.
    pub booted: Option<SlotName>,
    /// The store's state at start.
    pub at_start: BootState,
}

impl BootView {
    /// Whether the booted slot is on trial (probation must decide it).
    pub fn booted_on_trial(&self) -> bool {
        self.booted.as_ref().is_some_and(|slot| {
            matches!(
                self.at_start.status(slot),
                Ok(skerry_boot_state::SlotStatus::Trial { .. })
            )
        })
    }
}

/// Handed to each subsystem's `register`.
#[derive(Clone)]
pub struct Context {
    /// Paths under the machine root.
    pub layout: Layout,
    /// The board definition.
    pub board: BoardDefinition,
    /// The boot state at start.
    pub boot: BootView,
    /// Where this start reads and writes `/var` state.
    pub area: VarArea,
    /// The runtime's state (resources).
    pub state: State,
    /// The event log.
    pub events: EventLog,
    /// What the watchdog gate checks before every feed.
    pub vitals: Vitals,
    /// Reboot and shutdown.
    pub power: Arc<dyn Power>,
    /// Becomes `true` when the daemon stops.
    pub stopping: watch::Receiver<bool>,
    /// Work to finish when the daemon stops.
    pub stop_hooks: crate::hooks::StopHooks,
    /// The daemon's own version.
    pub daemon_version: String,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("layout", &self.layout)
            .field("board", &self.board.name)
            .field("boot", &self.boot)
            .field("area", &self.area)
            .finish_non_exhaustive()
    }
}
