//! Board definitions as data: what Skerry needs to know about a board to build its disk,
//! boot it and run on it — the architecture, the bootloader and where it keeps the A/B
//! boot state, the partition layout, which boot files live in each slot, the kernel
//! modules, the watchdog, the console and the status LEDs.
//!
//! Definitions are TOML files in `boards/` (`qemu-x86_64.toml`), decoded strictly and
//! validated whole: every problem is listed at once.
//!
//! # Layout
//! - [`definition`]: the types, as the TOML spells them.
//! - [`size`]: sizes as `"64MiB"`.
//! - [`layout`]: where each partition lands on the disk.
//! - [`boot_state`]: the boot-state store template and its placeholders.
//! - [`validate`]: the whole-definition checks and their limits.
//! - [`load`]: reading a file, and the errors.
//! - [`shipped`]: the definitions built into the crate.

pub mod boot_state;
pub mod definition;
pub mod layout;
pub mod load;
pub mod shipped;
pub mod size;
pub mod validate;

pub use boot_state::{Placeholder, TemplateError};
pub use definition::*;
pub use load::{BoardError, MAX_DEFINITION_BYTES};
pub use shipped::{shipped, SHIPPED};
pub use size::{Size, SizeError};
pub use validate::{Problem, Problems};
