//! A simulated board: A/B slots as files, the store's simulated bootloader
//! (`skerry_boot_state::sim`), and a health check of the image that runs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use skerry_boot_state::sim::{self, Machine};
use skerry_boot_state::{BootError, BootState, SlotName, SlotStatus, StoreError};

/// The first bytes of an image that passes its health checks once booted.
pub const HEALTHY_IMAGE: &[u8] = b"SKERRY-IMAGE healthy\n";

/// What went wrong on the board.
#[derive(Debug, thiserror::Error)]
pub enum BoardError {
    #[error("refused: slot {slot} is running; never write the booted slot")]
    WriteToBootedSlot { slot: SlotName },
    #[error("slot {slot} has no image file on this board")]
    NoSuchSlot { slot: SlotName },
    #[error("the board is powered off")]
    PoweredOff,
    #[error("installing into slot {slot} failed")]
    Update {
        slot: SlotName,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("cannot access {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    State(#[from] BootError),
}

/// A board with a boot-state store and one image file per slot.
pub struct SimBoard {
    machine: Box<dyn Machine>,
    /// The reboot the running system asked for (the update engine asks for one right
    /// after it begins a trial), delivered when the board goes down.
    reboot_request: Option<&'static str>,
    images: BTreeMap<SlotName, PathBuf>,
    running: Option<SlotName>,
}

impl std::fmt::Debug for SimBoard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimBoard")
            .field("images", &self.images)
            .field("running", &self.running)
            .finish_non_exhaustive()
    }
}

impl SimBoard {
    /// A powered-off board whose slots keep their images in `images`.
    pub fn new(machine: Box<dyn Machine>, images: BTreeMap<SlotName, PathBuf>) -> Self {
        SimBoard {
            machine,
            reboot_request: None,
            images,
            running: None,
        }
    }

    /// The boot state as persisted.
    pub fn boot_state(&self) -> Result<BootState, BoardError> {
        Ok(self.machine.store().load()?)
    }

    /// The slot running now, if powered on.
    pub fn running(&self) -> Option<&SlotName> {
        self.running.as_ref()
    }

    /// The board goes down: by the reboot the running system asked for, if it asked for
    /// one (after beginning a trial: `reboot "0 tryboot"`, which only the Raspberry Pi
    /// firmware tells from a plain one), otherwise by a power cut or a watchdog reset.
    pub fn power_off(&mut self) {
        match self.reboot_request.take() {
            Some(arg) => self.machine.request_reboot(arg),
            None => self.machine.power_cut(),
        }
        self.running = None;
    }

    /// Powers on: the bootloader picks a slot (consuming a trial attempt if it picks a
    /// slot on trial) and starts it.
    pub fn power_on(&mut self) -> Result<SlotName, BoardError> {
        let slot = self.machine.power_on()?;
        self.running = Some(slot.clone());
        Ok(slot)
    }

    /// Whether the running image passes its health checks.
    pub fn running_is_healthy(&self) -> Result<bool, BoardError> {
        let slot = self.running.as_ref().ok_or(BoardError::PoweredOff)?;
        let path = self.image_path(slot)?;
        let image = std::fs::read(path).map_err(|source| BoardError::Io {
            path: path.clone(),
            source,
        })?;
        Ok(image.starts_with(HEALTHY_IMAGE))
    }

    /// Installs into the inactive `slot` and starts its trial, the way the update engine
    /// does: the slot is marked bad first (refused if it is the last good slot), `write`
    /// fills it (given the slot's image file and the running slot's image, the seed) and
    /// must verify what it wrote; only then does the trial begin.
    pub fn install_with(
        &mut self,
        slot: &SlotName,
        write: impl FnOnce(&Path, &Path) -> Result<(), BoardError>,
    ) -> Result<(), BoardError> {
        let running = self.running.clone().ok_or(BoardError::PoweredOff)?;
        if running == *slot {
            return Err(BoardError::WriteToBootedSlot { slot: slot.clone() });
        }
        let target = self.image_path(slot)?.clone();
        let seed = self.image_path(&running)?.clone();
        let mut state = self.machine.store().load()?;
        if state.status(slot)? != SlotStatus::Bad {
            state.mark_bad(slot)?;
            self.machine.store_mut().commit(&state)?;
        }
        write(&target, &seed)?;
        state.begin_trial(slot)?;
        self.machine.store_mut().commit(&state)?;
        self.reboot_request = sim::reboot_request(&state);
        Ok(())
    }

    /// What the device does once it runs healthy: a slot on trial is marked good.
    /// Returns whether anything changed.
    pub fn commit_if_healthy(&mut self) -> Result<bool, BoardError> {
        let slot = self.running.clone().ok_or(BoardError::PoweredOff)?;
        let mut state = self.machine.store().load()?;
        let on_trial = matches!(state.status(&slot)?, SlotStatus::Trial { .. });
        if on_trial && self.running_is_healthy()? {
            state.mark_good(&slot)?;
            self.machine.store_mut().commit(&state)?;
            return Ok(true);
        }
        Ok(false)
    }

    /// The slot that is not running and not the first good slot: where the next image goes.
    pub fn inactive_slot(&self) -> Result<SlotName, BoardError> {
        let running = self.running.as_ref().ok_or(BoardError::PoweredOff)?;
        self.images
            .keys()
            .find(|s| *s != running)
            .cloned()
            .ok_or_else(|| BoardError::NoSuchSlot {
                slot: running.clone(),
            })
    }

    fn image_path(&self, slot: &SlotName) -> Result<&PathBuf, BoardError> {
        self.images
            .get(slot)
            .ok_or_else(|| BoardError::NoSuchSlot { slot: slot.clone() })
    }
}
