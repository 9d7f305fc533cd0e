//! The boot state in a U-Boot environment, readable by RAUC's U-Boot boot scripts, and
//! the U-Boot boot script that implements the model's power-on decision.
//!
//! # On-disk mapping
//!
//! RAUC's documented variables carry the decision, so an existing RAUC boot script keeps
//! working; two variables of ours tell a good slot from one on trial and keep `tries`:
//!
//! | model                 | `BOOT_<slot>_LEFT` | `SKERRY_<slot>_TRIAL` |
//! |-----------------------|--------------------|-----------------------|
//! | `Good`                | `tries`            | absent                |
//! | `Trial { tries_left }`| `tries_left`       | `1`                   |
//! | `Bad`                 | `0`                | absent                |
//!
//! - `BOOT_ORDER`: every slot, space-separated, in the model's boot order.
//! - `SKERRY_TRIES`: the attempts a trial gets (1 to 15), so `load` round-trips exactly.
//!
//! Counts are canonical decimals. A good slot's count only has to be positive: RAUC's own
//! script counts good slots down too (and RAUC's mark-good refills them); ours starts a
//! good slot without consuming anything, so power cuts cannot wear it out (rauc#683).
//!
//! # An environment written by plain RAUC tools
//!
//! Without `SKERRY_*` variables it loads with RAUC's meaning: a slot with attempts left
//! is good, one with none is bad, a slot RAUC's mark-bad took out of `BOOT_ORDER` (it
//! still has its `BOOT_<slot>_LEFT`) is bad and goes to the end of the order, and
//! `tries` is RAUC's default of 3. The first commit
//! adds our variables. Once Skerry manages an environment, change it with Skerry only:
//! RAUC's mark-bad (count 0) is honoured, but RAUC's "install and set primary" writes a
//! positive count that we read as good, not as a trial.
//!
//! # Layout
//! - [`env`](mod@env): one copy's bytes (CRC, flag, `name=value\0` data).
//! - [`mapping`] (in [`crate::rauc::uboot`], beside GRUB's): the table above and the boot
//!   script's rules, mirrored in Rust; [`vars`] (in [`crate::rauc::vars`]): ordered
//!   variables as bytes.
//! - [`store`]: the store, [`UbootEnvStore`], single or redundant, on any [`Medium`](crate::Medium).
//! - [`script`]: the `boot.cmd` source, [`boot_script`].

pub mod env;
pub mod script;
pub mod store;

/// The mapping lives with GRUB's in [`crate::rauc`]; here under its old name.
pub use crate::rauc::uboot as mapping;
pub use crate::rauc::vars;

pub use script::boot_script;
pub use store::{UbootEnvStore, UbootLayout, SINGLE_REWRITE_LIMIT};

use crate::medium::MemoryMedium;
use crate::state::BootState;
use crate::store::{BootStore, StoreError};

/// The fuzzing entry point: reads `data` as a single environment filling it, then as a
/// redundant one with two copies of half its length, then as the data area of a single
/// copy with a correct CRC (so random input reaches the variable parser and the mapping,
/// not only the CRC check), and on success runs the boot script's power-on rules on it.
/// Hostile input gets an error, never a panic.
pub fn fuzz_parse(data: &[u8]) -> Result<BootState, StoreError> {
    let single = UbootLayout {
        offset: 0,
        size: data.len(),
        redundant: false,
    };
    let redundant = UbootLayout {
        offset: 0,
        size: data.len() / 2,
        redundant: true,
    };
    let mut with_crc = crc32fast::hash(data).to_le_bytes().to_vec();
    with_crc.extend_from_slice(data);
    let data_area = UbootLayout {
        offset: 0,
        size: with_crc.len(),
        redundant: false,
    };
    let mut last = None;
    for (bytes, layout) in [
        (data, single),
        (data, redundant),
        (&with_crc[..], data_area),
    ] {
        let mut store = UbootEnvStore::new(MemoryMedium::new(bytes.to_vec()), layout);
        match store.load() {
            Ok(state) => {
                // Whatever the script does next must again be a loadable state.
                if store.run_boot_script().is_ok() {
                    debug_assert!(store.load().is_ok(), "power-on broke a loadable env");
                }
                return Ok(state);
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| StoreError::NoValidCopy {
        path: "<fuzz input>".into(),
    }))
}
