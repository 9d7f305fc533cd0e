//! [`GptStore`]: the boot state in the ChromeOS attribute bits of the slots' GPT entries.

use crate::medium::Medium;
use crate::state::{BootState, SlotName, MAX_TRIES};
use crate::store::{BootStore, StoreError};

use super::attributes::{self, EncodeError, KernelAttributes};
use super::table::{self, Table};

/// A disk whose slots are GPT partitions, each configured as `(slot, partition number)`
/// with partition numbers counted from 1 as `cgpt -i` and `sgdisk` count them.
#[derive(Debug)]
pub struct GptStore<M: Medium> {
    disk: M,
    slots: Vec<(SlotName, u32)>,
    /// The slot the running system was started from, when the caller knows it.
    running: Option<SlotName>,
}

impl<M: Medium> GptStore<M> {
    /// A store on `disk` (an image file, a block device, or memory in tests). Nothing is
    /// read until [`BootStore::load`] or [`BootStore::commit`].
    pub fn new(disk: M, slots: Vec<(SlotName, u32)>) -> Self {
        GptStore {
            disk,
            slots,
            running: None,
        }
    }

    /// The same store, told that the running system was started from `slot` (on a
    /// ChromeOS-style device the kernel command line names the partition the firmware
    /// started). vboot gives a trial up as its last attempt starts (see
    /// [`crate::gpt::firmware`]), so the running slot's entry may read priority 0, tries
    /// 0, not successful: load then shows it on trial with no attempt left, at the front,
    /// so that [`BootState::mark_good`] of it, committed, restores its priority and sets
    /// successful. Any other entry that reads so is bad, as `cgpt` means it.
    pub fn running(mut self, slot: SlotName) -> Self {
        self.running = Some(slot);
        self
    }

    /// Gives the disk back.
    pub fn into_medium(self) -> M {
        self.disk
    }

    /// The disk.
    pub fn medium(&self) -> &M {
        &self.disk
    }

    fn unsupported(&self, reason: String) -> StoreError {
        StoreError::Unsupported {
            path: self.disk.path().to_owned(),
            reason,
        }
    }

    /// Checks the configuration against the table: partition numbers are distinct, in
    /// range, and name partitions that exist.
    fn check_slots(&self, copy: &table::Copy) -> Result<(), StoreError> {
        let h = &copy.header;
        for (i, (name, number)) in self.slots.iter().enumerate() {
            if self.slots[..i].iter().any(|(_, n)| n == number) {
                return Err(self.unsupported(format!(
                    "slot {name} uses partition {number}, which another slot uses too"
                )));
            }
            if *number == 0 || *number > h.entry_count {
                return Err(self.unsupported(format!(
                    "slot {name} is partition {number}, but the table has partitions 1..={}",
                    h.entry_count
                )));
            }
            if !table::entry_in_use(&copy.entries, h.entry_size, number - 1) {
                return Err(self.unsupported(format!(
                    "slot {name} is partition {number}, which is not defined in the GPT"
                )));
            }
        }
        Ok(())
    }
}

impl<M: Medium> BootStore for GptStore<M> {
    fn load(&self) -> Result<BootState, StoreError> {
        let found = self.slot_attributes()?;
        let (slots, tries) = attributes::decode_running(&found, self.running.as_ref());
        Ok(BootState::from_parts(slots, tries)?)
    }

    fn commit(&mut self, state: &BootState) -> Result<(), StoreError> {
        state.check()?;
        let mut partitions = Vec::with_capacity(state.slots().len());
        for slot in state.slots() {
            let number = self
                .slots
                .iter()
                .find(|(n, _)| *n == slot.name)
                .map(|(_, p)| *p)
                .ok_or_else(|| {
                    self.unsupported(format!(
                        "slot {} is not configured for this disk",
                        slot.name
                    ))
                })?;
            partitions.push(number);
        }
        if partitions.len() != self.slots.len() {
            return Err(self.unsupported(format!(
                "the state has {} slots, the disk is configured with {}",
                partitions.len(),
                self.slots.len()
            )));
        }
        let encoded = attributes::encode(state, &partitions).map_err(|e| match e {
            EncodeError::TooManyRanks { slot } => self.unsupported(format!(
                "the boot order needs more than 15 priorities (at slot {slot})"
            )),
        })?;
        let table = Table::read(&self.disk)?;
        let copy = table.trusted().ok_or_else(|| StoreError::NoValidCopy {
            path: self.disk.path().to_owned(),
        })?;
        self.check_slots(copy)?;
        let mut entries = copy.entries.clone();
        let size = copy.header.entry_size;
        for (number, attrs) in partitions.iter().zip(encoded) {
            let raw = table::attributes(&entries, size, number - 1).unwrap_or(0);
            table::set_attributes(&mut entries, size, number - 1, attrs.apply(raw));
        }
        let in_sync =
            matches!((&table.primary, &table.backup), (Ok(p), Ok(b)) if p.entries == b.entries);
        if entries == copy.entries && in_sync {
            return Ok(());
        }
        table.write_entries(&mut self.disk, &entries)
    }

    fn max_tries(&self) -> u8 {
        MAX_TRIES
    }
}

impl<M: Medium> GptStore<M> {
    /// Each configured slot with its partition number and attribute fields, read from
    /// the copy load trusts.
    pub(crate) fn slot_attributes(
        &self,
    ) -> Result<Vec<(SlotName, u32, KernelAttributes)>, StoreError> {
        let table = Table::read(&self.disk)?;
        let copy = table.trusted().ok_or_else(|| StoreError::NoValidCopy {
            path: self.disk.path().to_owned(),
        })?;
        self.check_slots(copy)?;
        Ok(self
            .slots
            .iter()
            .map(|(name, number)| {
                let raw = table::attributes(&copy.entries, copy.header.entry_size, number - 1)
                    .unwrap_or(0);
                (name.clone(), *number, KernelAttributes::from_raw(raw))
            })
            .collect())
    }

    /// Sets the ChromeOS fields of the given partitions, every other bit kept, through
    /// the same power-safe write as a commit: what the firmware does when it uses a try
    /// (see [`crate::gpt::firmware`]). Nothing is written if nothing changes.
    pub(crate) fn write_fields(
        &mut self,
        fields: &[(u32, KernelAttributes)],
    ) -> Result<(), StoreError> {
        let table = Table::read(&self.disk)?;
        let copy = table.trusted().ok_or_else(|| StoreError::NoValidCopy {
            path: self.disk.path().to_owned(),
        })?;
        self.check_slots(copy)?;
        let size = copy.header.entry_size;
        let mut entries = copy.entries.clone();
        for (number, attrs) in fields {
            let raw = table::attributes(&entries, size, number - 1).unwrap_or(0);
            table::set_attributes(&mut entries, size, number - 1, attrs.apply(raw));
        }
        if entries == copy.entries {
            return Ok(());
        }
        table.write_entries(&mut self.disk, &entries)
    }
}
