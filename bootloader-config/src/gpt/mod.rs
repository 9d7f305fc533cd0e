//! The boot state in GPT partition attributes, in the ChromeOS scheme that `cgpt`, the
//! ChromeOS firmware, Flatcar and Bottlerocket use: priority in bits 48–51, tries in
//! 52–55, successful in bit 56 of each slot partition's attribute field.
//!
//! # Mapping of the model
//!
//! | model | successful | priority | tries |
//! | --- | --- | --- | --- |
//! | good | 1 | rank (> 0) | the configured `tries` |
//! | on trial, `n` left | 0 | rank (> 0) | `n` |
//! | bad | 0 | 0 | rank (0 unless the slot sits ahead of a bootable slot) |
//!
//! **Boot order** is priority descending, ties broken by the lower partition number:
//! that is how the ChromeOS firmware picks (highest priority first, and among equal
//! priorities the first entry of the table). Ranks are as small as the order allows, so
//! A/B with A first is priorities 1 and 1 (A on the lower partition) or 2 and 1.
//! The firmware starts an entry only if its priority is above 0 and it is successful or
//! has tries left, which is exactly the model's "good, or on trial with tries left".
//!
//! Two things the model keeps have no field of their own, and both go into tries bits
//! the firmware never reads, so no bit outside 48–56 and no byte outside the attribute
//! field is touched:
//! - **`tries`** (the attempts a trial gets) is kept in the tries field of good slots:
//!   the firmware ignores tries once the successful bit is set (vboot: "tries field is
//!   ignored" for a successful entry). There is always a good slot, so it always loads
//!   back. A table written only by `cgpt` (good slots with tries 0) loads with the
//!   largest tries of a trial slot, or [`attributes::DEFAULT_TRIES`].
//! - **the place of a bad slot** in the order is kept in the tries field of that
//!   priority-0 entry, at least 1 (the firmware never starts a priority-0 entry whatever
//!   its tries): so the tries 0 that vboot leaves on a trial it gives up sorts behind
//!   every slot we wrote, which is where the model puts a slot given up that way.
//!
//! A trial whose tries ran out (model: on trial, 0 left) keeps its priority with tries 0
//! and successful 0 (this is what Flatcar's GRUB `gptprio` leaves); the firmware skips
//! it just as it skips a priority-0 entry.
//!
//! # The firmware's rules
//! ChromeOS vboot gives a trial up as its last attempt starts: priority 0, tries 0 (see
//! [`firmware`], and `docs/boot-state.md` for vboot and `gptprio` side by side). The
//! slot running that attempt reads like a bad one, so the running system tells the store
//! which slot it runs ([`GptStore::running`]) to mark it good. The simulation's power-on
//! ([`firmware::Vboot`]) does exactly what vboot does to the bits; the model agrees
//! under [`GiveUp::AtLastAttempt`](crate::GiveUp::AtLastAttempt).
//!
//! # Atomicity
//! Both table copies are rewritten, backup first while the primary is valid (see
//! [`table`]), so after a power cut at any byte load returns the old or the new state.
//! Sector size 512 is the norm; 4096-byte sectors are found as well.
//!
//! # Layout
//! - [`header`]: the GPT header and its CRC.
//! - [`table`]: both copies, reading with fallback, power-safe writing.
//! - [`attributes`]: the ChromeOS bits and the model mapping.
//! - [`firmware`]: the firmware's pick, for the simulated power-on.
//! - [`store`]: the store itself, [`GptStore`].
//! - [`image`]: fresh images for tests and fixtures.

pub mod attributes;
pub mod firmware;
pub mod header;
pub mod image;
pub mod store;
pub mod table;

pub use store::GptStore;

use crate::fuzz_check;
use crate::medium::MemoryMedium;
use crate::state::{BootState, SlotName};
use crate::store::StoreError;

/// The fuzzing entry point: treats `data` as a disk image with slots A (partition 2) and
/// B (partition 3), loads it, and commits back; then does the same with the primary
/// header's two CRCs recomputed, so mutations reach the checks behind the CRCs. Hostile
/// bytes give an error, never a panic; it panics only if a state that was committed does
/// not load back unchanged. Returns the outcome for `data` as given.
pub fn fuzz_parse(data: &[u8]) -> Result<BootState, StoreError> {
    if let Some(fixed) = with_primary_crcs_fixed(data) {
        let _ = load_and_commit(&fixed);
    }
    load_and_commit(data)
}

fn load_and_commit(data: &[u8]) -> Result<BootState, StoreError> {
    let slots = fuzz_check::slots_a2_b3()?;
    let mut store = GptStore::new(MemoryMedium::new(data.to_vec()), slots.clone());
    // On input that does not load, still exercise the write path on any table that parses.
    fuzz_check::load_commit_load(&mut store, || {
        let names: Vec<SlotName> = slots.iter().map(|(n, _)| n.clone()).collect();
        Ok(BootState::new(&names, 3)?)
    })
}

/// `data` with the 512-byte-sector primary header's entry-array CRC and header CRC made
/// to match, when the header's sizes are small enough to compute them.
fn with_primary_crcs_fixed(data: &[u8]) -> Option<Vec<u8>> {
    let mut d = data.get(..)?.to_vec();
    let header = d.get(512..1024)?;
    let field = |at: usize| -> Option<u64> {
        let b = header.get(at..at + 8)?;
        Some(u64::from_le_bytes(b.try_into().ok()?))
    };
    let size = (field(12)? & 0xFFFF_FFFF) as usize;
    let count_size = field(80)?;
    let array = (count_size & 0xFFFF_FFFF).checked_mul(count_size >> 32)?;
    let at = field(72)?.checked_mul(512)?;
    if !(92..=512).contains(&size) || array > header::MAX_ENTRY_ARRAY {
        return None;
    }
    let entries = d.get(usize::try_from(at).ok()?..)?.get(..array as usize)?;
    let entries_crc = crc32fast::hash(entries);
    d[512 + 88..512 + 92].copy_from_slice(&entries_crc.to_le_bytes());
    d[512 + 16..512 + 20].fill(0);
    let crc = crc32fast::hash(&d[512..512 + size]);
    d[512 + 16..512 + 20].copy_from_slice(&crc.to_le_bytes());
    Some(d)
}
