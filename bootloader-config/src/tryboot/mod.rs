//! The boot state for the Raspberry Pi firmware's tryboot: `autoboot.txt` on the first
//! FAT partition, with `tryboot_a_b=1`, `[all] boot_partition` for normal boots and
//! `[tryboot] boot_partition` for the one boot after `reboot "0 tryboot"`.
//!
//! # Mapping of the model
//! - `[all] boot_partition` is the first **good** slot in boot order; the firmware boots
//!   it on every normal boot.
//! - `[tryboot] boot_partition` is the slot **on trial** while its one boot is ahead
//!   (otherwise the `[all]` partition, so a stray tryboot reboot never starts a spent
//!   trial again). The firmware's one-shot flag makes a trial get exactly one boot, so
//!   `max_tries` and the state's `tries` are 1.
//! - Everything else the model holds (the whole boot order, every slot's status, and
//!   whether the trial's one boot is still ahead, `trial:1`, or used, `trial:0`) is one
//!   comment line at the top, which the firmware ignores (see [`record`]):
//!   `# skerry-boot-state v1: B=trial:1 A=good`.
//!   Load checks that the firmware keys agree with it and refuses a file where they
//!   do not (e.g. edited by hand), naming the difference.
//! - **Bad** slots appear only in the record; the firmware never boots them because
//!   neither section names them.
//!
//! The firmware's one-shot flag is no file of its own and is never read from this one:
//! the simulated firmware ([`firmware::PiFirmware`]) sets it from the reboot request
//! (`reboot "0 tryboot"`) and clears it at the next boot; the running system's
//! bookkeeping of what that boot was is the record (see [`firmware`]).
//!
//! # Atomicity
//! `autoboot.txt` lives on FAT, which has no atomic rename. So the file is kept exactly
//! one 512-byte sector long (padded with a `#` comment line) and rewritten in place with
//! one write and one flush: a sector lands whole or not at all, and the length never
//! changes. Only the first rewrite of a file of another length (`init`, a hand-made
//! file) replaces it (atomic on POSIX filesystems, not on FAT). The power-loss tests
//! (`tests/power_loss.rs`) check it under the lossy model in FAT mode. Comments, unknown
//! keys, other sections and CRLF line endings are kept; content that does not fit one
//! sector is refused.
//!
//! # Layout
//! - [`autoboot`]: parsing and rewriting `autoboot.txt`, and what the firmware reads.
//! - [`record`]: the record comment.
//! - [`firmware`]: the firmware's choice and its one-shot flag.
//! - [`store`]: the store itself, [`TrybootStore`].

pub mod autoboot;
pub mod firmware;
pub mod record;
pub mod store;

pub use firmware::TRYBOOT_REBOOT_ARG;
pub use store::{TrybootStore, AUTOBOOT_FILE, TRYBOOT_TRIES};

use crate::fuzz_check;
use crate::medium::MemoryMedium;
use crate::state::{BootState, SlotName};
use crate::store::StoreError;

/// The fuzzing entry point: treats `data` as `autoboot.txt` for slots A (partition 2)
/// and B (partition 3). Parses it, and if it parses, rewrites it with a state and checks
/// the firmware keys and the record say the same; if it loads, commits it back and
/// checks it loads unchanged. Hostile bytes give an error, never a panic; it panics only
/// when a rewrite does not mean what it should.
pub fn fuzz_parse(data: &[u8]) -> Result<BootState, StoreError> {
    let slots = fuzz_check::slots_a2_b3()?;
    let doc = autoboot::Autoboot::parse(data);
    if let Ok(doc) = &doc {
        let again = autoboot::Autoboot::parse(&doc.to_bytes());
        assert_eq!(
            again.as_ref().ok(),
            Some(doc),
            "a parsed file must reparse the same"
        );
    }
    let mut store = TrybootStore::new(MemoryMedium::new(data.to_vec()), slots.clone());
    fuzz_check::load_commit_load(&mut store, || {
        let names: Vec<SlotName> = slots.iter().map(|(n, _)| n.clone()).collect();
        let mut fresh = BootState::new(&names, TRYBOOT_TRIES)?;
        fresh.begin_trial(&names[1])?;
        Ok(fresh)
    })
}
