//! The ChromeOS partition-attribute bits and how a [`BootState`] maps onto them.
//!
//! Only bits 48–56 of a slot's 64-bit attribute field are ours (priority 48–51, tries
//! 52–55, successful 56); every other bit is kept as found.
//!
//! See the module docs of [`crate::gpt`] for the mapping and why each field holds what
//! it holds.

use crate::state::{BootState, SlotName, SlotState, SlotStatus};

const PRIORITY_SHIFT: u32 = 48;
const TRIES_SHIFT: u32 = 52;
const SUCCESSFUL_SHIFT: u32 = 56;
/// The bits this backend owns; the rest of the attribute field is never touched.
pub const OWNED_MASK: u64 =
    (0xF << PRIORITY_SHIFT) | (0xF << TRIES_SHIFT) | (1 << SUCCESSFUL_SHIFT);

/// The largest value of the 4-bit priority and tries fields.
pub const FIELD_MAX: u8 = 15;
/// What `tries` loads as when no slot records it (a table written by `cgpt` alone, whose
/// good slots carry tries 0 and which has no trial).
pub const DEFAULT_TRIES: u8 = 3;

/// The three ChromeOS fields of one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KernelAttributes {
    pub priority: u8,
    pub tries: u8,
    pub successful: bool,
}

impl KernelAttributes {
    /// Reads the fields out of a raw attribute value.
    pub fn from_raw(raw: u64) -> Self {
        KernelAttributes {
            priority: ((raw >> PRIORITY_SHIFT) & 0xF) as u8,
            tries: ((raw >> TRIES_SHIFT) & 0xF) as u8,
            successful: (raw >> SUCCESSFUL_SHIFT) & 1 == 1,
        }
    }

    /// `raw` with the three fields replaced and every other bit kept.
    pub fn apply(self, raw: u64) -> u64 {
        (raw & !OWNED_MASK)
            | (u64::from(self.priority & 0xF) << PRIORITY_SHIFT)
            | (u64::from(self.tries & 0xF) << TRIES_SHIFT)
            | (u64::from(self.successful) << SUCCESSFUL_SHIFT)
    }
}

/// Why a state cannot be written as attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EncodeError {
    /// The order needs more than 15 distinct ranks.
    TooManyRanks { slot: SlotName },
}

/// The attributes for each slot of `state`, in the state's order. `partitions[i]` is the
/// partition number of `state.slots()[i]`.
///
/// Ranks are assigned from the back of the boot order to the front, each as small as it
/// can be while still sorting after the slots before it: equal ranks sort by partition
/// number, as the ChromeOS firmware breaks priority ties (lowest entry first). Every
/// rank is at least 1, a bad slot's too (in its tries field): the tries 0 that vboot
/// leaves on a trial it gave up then sorts behind every slot we wrote, which is where
/// the model puts it ([`crate::state::GiveUp::AtLastAttempt`]).
pub fn encode(state: &BootState, partitions: &[u32]) -> Result<Vec<KernelAttributes>, EncodeError> {
    let slots = state.slots();
    let mut ranks = vec![0u8; slots.len()];
    for i in (0..slots.len()).rev() {
        let floor = 1;
        let after = match ranks.get(i + 1) {
            None => 0,
            Some(&next) if partitions[i] < partitions[i + 1] => next,
            Some(&next) => next.saturating_add(1),
        };
        let rank = floor.max(after);
        if rank > FIELD_MAX {
            return Err(EncodeError::TooManyRanks {
                slot: slots[i].name.clone(),
            });
        }
        ranks[i] = rank;
    }
    Ok(slots
        .iter()
        .zip(ranks)
        .map(|(slot, rank)| match slot.status {
            SlotStatus::Good => KernelAttributes {
                priority: rank,
                tries: state.tries(),
                successful: true,
            },
            SlotStatus::Trial { tries_left } => KernelAttributes {
                priority: rank,
                tries: tries_left,
                successful: false,
            },
            SlotStatus::Bad => KernelAttributes {
                priority: 0,
                tries: rank,
                successful: false,
            },
        })
        .collect())
}

/// [`decode`], knowing that the running system was started from `running`: if that
/// slot's entry reads priority 0, tries 0, not successful, vboot gave it up as its last
/// attempt started, and it is that attempt which runs now. It is then on trial with no
/// attempt left, first in the order, as the model has it right after that power-on
/// ([`crate::state::GiveUp::AfterLastAttempt`]), so it can still be marked good.
pub fn decode_running(
    slots: &[(SlotName, u32, KernelAttributes)],
    running: Option<&SlotName>,
) -> (Vec<SlotState>, u8) {
    let (mut states, tries) = decode(slots);
    let spent = KernelAttributes {
        priority: 0,
        tries: 0,
        successful: false,
    };
    let on_last_attempt = slots
        .iter()
        .find(|(name, _, a)| Some(name) == running && *a == spent)
        .map(|(name, _, _)| name);
    if let Some(i) = on_last_attempt.and_then(|n| states.iter().position(|s| &s.name == n)) {
        let mut entry = states.remove(i);
        entry.status = SlotStatus::Trial { tries_left: 0 };
        states.insert(0, entry);
    }
    (states, tries)
}

/// The slots' statuses, order and `tries` from their attributes (`(name, partition,
/// attributes)` in any order). The result is not yet checked against the model's
/// invariants; [`BootState::from_parts`] does that.
pub fn decode(slots: &[(SlotName, u32, KernelAttributes)]) -> (Vec<SlotState>, u8) {
    let mut ranked: Vec<(u8, u32, SlotState)> = slots
        .iter()
        .map(|(name, partition, a)| {
            let (rank, status) = match (a.priority, a.successful) {
                (0, false) => (a.tries, SlotStatus::Bad),
                // A successful slot with priority 0 is never started: bad, at the back.
                (0, true) => (0, SlotStatus::Bad),
                (p, true) => (p, SlotStatus::Good),
                (p, false) => (
                    p,
                    SlotStatus::Trial {
                        tries_left: a.tries,
                    },
                ),
            };
            let state = SlotState {
                name: name.clone(),
                status,
            };
            (rank, *partition, state)
        })
        .collect();
    ranked.sort_by(|x, y| y.0.cmp(&x.0).then(x.1.cmp(&y.1)));
    let recorded = slots
        .iter()
        .filter(|(_, _, a)| a.priority > 0)
        .map(|(_, _, a)| a.tries)
        .max()
        .unwrap_or(0);
    let tries = if recorded == 0 {
        DEFAULT_TRIES
    } else {
        recorded
    };
    (ranked.into_iter().map(|(_, _, s)| s).collect(), tries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> SlotName {
        SlotName::new(s).unwrap()
    }

    #[test]
    fn cgpt_example_bits() {
        // `cgpt add -i 2 -P 1 -T 3 -S 0` gives raw attributes 0x0031000000000000.
        let a = KernelAttributes {
            priority: 1,
            tries: 3,
            successful: false,
        };
        assert_eq!(a.apply(0), 0x0031_0000_0000_0000);
        assert_eq!(KernelAttributes::from_raw(0x0031_0000_0000_0000), a);
    }

    #[test]
    fn other_bits_are_kept() {
        let raw = 0xFE00_0000_0000_0007u64 | (0xF << 48);
        let a = KernelAttributes {
            priority: 2,
            tries: 0,
            successful: true,
        };
        assert_eq!(a.apply(raw), 0xFF02_0000_0000_0007);
    }

    #[test]
    fn bad_slot_ahead_of_good_keeps_its_place() {
        let (a, b) = (name("A"), name("B"));
        let mut s = BootState::new(&[a.clone(), b.clone()], 2).unwrap();
        s.begin_trial(&b).unwrap();
        for _ in 0..3 {
            s.power_on().unwrap();
        }
        // B ran out of tries and stays first, now bad.
        assert_eq!(s.status(&b).unwrap(), SlotStatus::Bad);
        let attrs = encode(&s, &[3, 2]).unwrap();
        let with: Vec<_> = s
            .slots()
            .iter()
            .zip([3, 2])
            .zip(&attrs)
            .map(|((slot, p), a)| (slot.name.clone(), p, *a))
            .collect();
        let (slots, tries) = decode(&with);
        assert_eq!(BootState::from_parts(slots, tries).unwrap(), s);
        assert_eq!(attrs[0].priority, 0, "a bad slot is never bootable");
    }

    #[test]
    fn too_many_slots_for_four_bits() {
        let names: Vec<_> = (0..17).map(|i| name(&format!("s{i}"))).collect();
        let s = BootState::new(&names, 3).unwrap();
        // Descending partition numbers force a new rank at every step.
        let parts: Vec<u32> = (0..17).rev().collect();
        assert!(matches!(
            encode(&s, &parts),
            Err(EncodeError::TooManyRanks { .. })
        ));
    }
}
