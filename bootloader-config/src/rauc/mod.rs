//! The boot state in RAUC's bootloader variables, which the U-Boot environment and the
//! GRUB environment block both carry: what the two mappings share and each mapping.
//!
//! Both write RAUC's documented variables (so RAUC's own tools and boot scripts keep
//! working) plus a few `SKERRY_*` ones of ours, and both mirror, in Rust, the power-on
//! rules of the script Skerry generates for that bootloader, so the conformance suite
//! checks those rules against the pure model. The tables of the mappings are in the
//! module docs of [`crate::uboot`] and [`crate::grub`].
//!
//! # Layout
//! - [`vars`]: ordered variables as bytes, and what the two mappings share (value
//!   parsing, the order and tries variables, the walk of the order).
//! - [`uboot`]: U-Boot's `BOOT_ORDER`/`BOOT_<slot>_LEFT` mapping and its script's rules.
//! - [`grub`]: GRUB's `ORDER`/`<slot>_OK`/`<slot>_TRY` mapping and its fragment's rules.
//! - `checks` (tests only): the checks both mappings pass.

#[cfg(test)]
pub(crate) mod checks;
pub mod grub;
pub mod uboot;
pub mod vars;
