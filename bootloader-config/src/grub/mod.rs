//! The boot state in a GRUB environment block, readable by RAUC's GRUB scheme, and the
//! `grub.cfg` fragment that implements the model's power-on decision with real N-try
//! counting (RAUC's GRUB script gives a slot one try, rauc#1250).
//!
//! # On-disk mapping
//!
//! | model                     | `<slot>_OK` | `<slot>_TRY` | `SKERRY_<slot>_LEFT` |
//! |---------------------------|-------------|--------------|----------------------|
//! | `Good`                    | `1`         | `0`          | absent               |
//! | `Trial { tries_left: n }` | `1`         | `0`          | `n` (1..=15)         |
//! | `Trial { tries_left: 0 }` | `1`         | `1`          | `0`                  |
//! | `Bad`                     | `0`         | `0`          | absent               |
//!
//! - `ORDER`: every slot, space-separated, in the model's boot order.
//! - `SKERRY_TRIES`: the attempts a trial gets, so `load` round-trips exactly.
//!
//! RAUC's meaning stays true: `OK=1 TRY=0` is bootable (a good slot, or a trial with
//! attempts left), a trial on its last attempt becomes `TRY=1` when started ("started,
//! not yet marked good"), and a given-up trial is `OK=0`, as RAUC's mark-bad writes it.
//! RAUC's mark-good (`OK=1 TRY=0`) of a slot we count is not seen as such while our
//! counter is there; once Skerry manages the block, change it with Skerry.
//!
//! # A block written by plain RAUC tools
//!
//! Without `SKERRY_*` variables: `OK=1 TRY=0` loads as good, `OK=1 TRY=1` as a trial with
//! no attempt left (the next power-on gives it up), anything else as bad; `tries` is
//! RAUC's default of 3. The first commit adds our variables.
//!
//! # Layout
//! - [`envblk`]: the block's bytes (signature, escaped `name=value` lines, `#` padding).
//! - [`mapping`] (in [`crate::rauc::grub`], beside U-Boot's): the table above and the
//!   fragment's rules, mirrored in Rust.
//! - [`store`]: the store, [`GrubEnvStore`].
//! - [`script`]: the fragment, [`grub_cfg`].
//! - [`boot_script`]: the boot script on the ESP, the early config built into GRUB that
//!   picks it ([`early_config`]), and its power-safe update ([`BootScriptUpdate`]).

pub mod boot_script;
pub mod envblk;
pub mod script;
pub mod store;

/// The mapping lives with U-Boot's in [`crate::rauc`]; here under its old name.
pub use crate::rauc::grub as mapping;

pub use boot_script::{early_config, BootScriptUpdate};
pub use script::{grub_cfg, MENU_ID_PREFIX};
pub use store::GrubEnvStore;

use crate::medium::MemoryMedium;
use crate::state::BootState;
use crate::store::{BootStore, StoreError};

/// The fuzzing entry point: reads `data` as a GRUB environment block, and on success
/// runs the fragment's power-on rules on it. Hostile input gets an error, never a panic.
pub fn fuzz_parse(data: &[u8]) -> Result<BootState, StoreError> {
    let mut store = GrubEnvStore::new(MemoryMedium::new(data.to_vec()));
    let state = store.load()?;
    if store.run_grub_fragment().is_ok() {
        debug_assert!(store.load().is_ok(), "power-on broke a loadable block");
    }
    Ok(state)
}
