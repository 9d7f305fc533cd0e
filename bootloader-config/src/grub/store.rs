//! [`GrubEnvStore`]: the boot state in a GRUB environment block file.
//!
//! A commit rewrites the whole file atomically through [`Medium::replace_all`] (temp
//! file, fsync, rename, fsync the directory), so after a power cut the old or the new
//! block is there. GRUB finds the file through its filesystem each boot, so a renamed
//! file is as good as one rewritten in place. Other variables are kept; the block keeps
//! its size (1024 bytes for a new one, like `grub-editenv create`).

use crate::grub::envblk;
use crate::grub::mapping;
use crate::medium::Medium;
use crate::state::{BootState, SlotName, MAX_TRIES};
use crate::store::{BootStore, StoreError};
use crate::uboot::vars::{MappingError, Vars};

const FORMAT: &str = "GRUB environment block";

/// The boot state in a GRUB environment block (`grubenv`) on a medium.
#[derive(Debug)]
pub struct GrubEnvStore<M: Medium> {
    medium: M,
}

impl<M: Medium> GrubEnvStore<M> {
    /// A store for the environment block in `medium`; nothing is read yet.
    pub fn new(medium: M) -> Self {
        GrubEnvStore { medium }
    }

    /// Gives the medium back.
    pub fn into_medium(self) -> M {
        self.medium
    }

    /// Every variable in the block.
    pub fn variables(&self) -> Result<Vars, StoreError> {
        let bytes = self.medium.read_all()?;
        envblk::decode(&bytes).map_err(|e| self.corrupt(e.to_string()))
    }

    fn corrupt(&self, reason: String) -> StoreError {
        StoreError::Corrupt {
            path: self.medium.path().to_owned(),
            format: FORMAT,
            reason,
        }
    }

    /// The current variables and block size, or a fresh block when the file does not
    /// exist or is empty. Anything else that is not a block is refused, not overwritten.
    fn existing(&self) -> Result<(Vars, usize), StoreError> {
        let len = match self.medium.len() {
            Err(e) if e.is_not_found() => 0,
            other => other?,
        };
        if len == 0 {
            return Ok((Vars::default(), envblk::DEFAULT_SIZE));
        }
        let vars = self.variables().map_err(|e| match e {
            StoreError::Corrupt { reason, .. } => self.corrupt(format!(
                "{reason}; refusing to overwrite it (remove the file or run \
                 `grub-editenv FILE create` to start afresh)"
            )),
            other => other,
        })?;
        Ok((vars, self.medium.read_all()?.len()))
    }

    fn write(&mut self, vars: &Vars, size: usize) -> Result<(), StoreError> {
        let bytes = envblk::encode(vars, size).map_err(|e| self.corrupt(e.to_string()))?;
        Ok(self.medium.replace_all(&bytes)?)
    }
}

impl<M: Medium> BootStore for GrubEnvStore<M> {
    fn load(&self) -> Result<BootState, StoreError> {
        mapping::read_state(&self.variables()?).map_err(|e| match e {
            MappingError::State(e) => StoreError::State(e),
            other => self.corrupt(other.to_string()),
        })
    }

    fn commit(&mut self, state: &BootState) -> Result<(), StoreError> {
        state.check()?;
        let (mut vars, size) = self.existing()?;
        mapping::write_state(&mut vars, state);
        self.write(&vars, size)
    }

    fn max_tries(&self) -> u8 {
        MAX_TRIES
    }

    /// Runs the generated fragment's rules on the stored variables (not the model's), so
    /// the conformance suite checks the fragment against the model.
    fn simulate_power_on(&mut self) -> Result<SlotName, StoreError> {
        let bytes = self.medium.read_all()?;
        let mut vars = envblk::decode(&bytes).map_err(|e| self.corrupt(e.to_string()))?;
        let decision = mapping::power_on(&mut vars);
        let slot = decision.slot.ok_or_else(|| {
            self.corrupt(
                "no bootable slot in ORDER; the fragment would start its fallback slot".into(),
            )
        })?;
        if decision.save {
            self.write(&vars, bytes.len())?;
        }
        Ok(slot)
    }
}
