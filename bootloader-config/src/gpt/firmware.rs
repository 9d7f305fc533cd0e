//! ChromeOS vboot's choice of kernel partition and its try counting, as the simulation
//! plays them on the slots' attribute bits.
//!
//! What vboot does at every boot (`GptNextKernelEntry` and `GptUpdateKernelEntry` in
//! vboot_reference's cgptlib, called from its kernel loader):
//! - **Pick**: among the kernel entries, the one with the highest priority that has
//!   priority above 0 and is successful or has tries left; equal priorities go to the
//!   entry that comes first in the table (the lowest partition number). Nothing
//!   bootable: recovery.
//! - **Count a try** of the picked entry, before the kernel starts, and only if it is not
//!   successful (the tries of a successful entry are ignored): with more than 1 try left
//!   it loses one; with 1 left (its last attempt) it is given up on the spot, priority 0
//!   and tries 0, successful stays 0. The table is written back (both copies) and the
//!   kernel started. A successful pick writes nothing.
//!
//! So the kernel that runs on its last attempt finds its own entry at priority 0, tries 0:
//! to commit, the running system restores the priority and sets successful (ChromeOS's
//! `chromeos-setgoodkernel` does this). [`GptStore::running`](super::GptStore::running)
//! tells the store which slot runs, so its load shows that slot on trial with no attempt
//! left and [`BootState::mark_good`](crate::BootState::mark_good) works.
//!
//! In the model this is [`GiveUp::AtLastAttempt`]. The simulation looks at the configured
//! slot partitions only (the real firmware looks at every ChromeOS-kernel entry), and
//! does not model kernel verification (a kernel that fails it is given up the same way).

use crate::medium::Medium;
use crate::state::{GiveUp, SlotName};
use crate::store::StoreError;

use super::attributes::KernelAttributes;
use super::GptStore;
use crate::sim::Firmware;

/// The partition the firmware starts, from `(partition number, attributes)` pairs in
/// any order; `None` when nothing is bootable (the real firmware enters recovery).
pub fn pick(candidates: &[(u32, KernelAttributes)]) -> Option<u32> {
    candidates
        .iter()
        .filter(|(_, a)| a.priority > 0 && (a.successful || a.tries > 0))
        .min_by(|(pa, a), (pb, b)| b.priority.cmp(&a.priority).then(pa.cmp(pb)))
        .map(|(partition, _)| *partition)
}

/// The entry's fields after the firmware counted the try of starting it.
pub fn count_try(a: KernelAttributes) -> KernelAttributes {
    match a {
        KernelAttributes {
            successful: true, ..
        } => a,
        KernelAttributes { tries, .. } if tries > 1 => KernelAttributes {
            tries: tries - 1,
            ..a
        },
        _ => KernelAttributes {
            priority: 0,
            tries: 0,
            successful: false,
        },
    }
}

/// ChromeOS vboot (depthcharge) reading the slots' GPT entries.
#[derive(Debug, Default)]
pub struct Vboot;

impl<M: Medium> Firmware<GptStore<M>> for Vboot {
    const GIVE_UP: GiveUp = GiveUp::AtLastAttempt;

    /// Picks, counts the try on the disk, and starts the slot.
    fn power_on(&mut self, store: &mut GptStore<M>) -> Result<SlotName, StoreError> {
        let found = store.slot_attributes()?;
        let candidates: Vec<(u32, KernelAttributes)> =
            found.iter().map(|(_, p, a)| (*p, *a)).collect();
        let unsupported = |reason: String| StoreError::Unsupported {
            path: store.medium().path().to_owned(),
            reason,
        };
        let partition = pick(&candidates).ok_or_else(|| {
            unsupported("no slot partition is bootable; the firmware would enter recovery".into())
        })?;
        let (slot, _, attrs) = found
            .iter()
            .find(|(_, p, _)| *p == partition)
            .ok_or_else(|| unsupported(format!("partition {partition} is no slot")))?;
        let slot = slot.clone();
        let counted = count_try(*attrs);
        if counted != *attrs {
            store.write_fields(&[(partition, counted)])?;
        }
        Ok(slot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(priority: u8, tries: u8, successful: bool) -> KernelAttributes {
        KernelAttributes {
            priority,
            tries,
            successful,
        }
    }

    #[test]
    fn highest_bootable_priority_wins_ties_to_lowest_partition() {
        let c = [
            (2, attrs(1, 0, true)),
            (3, attrs(2, 3, false)),
            (4, attrs(2, 0, true)),
        ];
        assert_eq!(pick(&c), Some(3));
        // Out of tries and not successful: skipped.
        let c = [(2, attrs(1, 0, true)), (3, attrs(5, 0, false))];
        assert_eq!(pick(&c), Some(2));
        // Priority 0 is never started.
        assert_eq!(pick(&[(2, attrs(0, 5, true))]), None);
    }

    /// vboot's `GPT_UPDATE_ENTRY_TRY`, case by case.
    #[test]
    fn counting_a_try_follows_vboot() {
        let cases = [
            // (before, after)
            (attrs(2, 3, false), attrs(2, 2, false)),
            (attrs(2, 2, false), attrs(2, 1, false)),
            // The last attempt: given up before the kernel starts.
            (attrs(2, 1, false), attrs(0, 0, false)),
            (attrs(15, 1, false), attrs(0, 0, false)),
            // Successful: tries ignored, nothing written.
            (attrs(1, 3, true), attrs(1, 3, true)),
            (attrs(1, 0, true), attrs(1, 0, true)),
            (attrs(1, 1, true), attrs(1, 1, true)),
        ];
        for (before, after) in cases {
            assert_eq!(count_try(before), after, "from {before:?}");
        }
    }
}
