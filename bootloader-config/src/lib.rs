//! Skerry's A/B boot state: which slot the bootloader starts, how many tries a slot on
//! trial has left, and which slots are known good.
//!
//! The decisions live in one pure state machine ([`BootState`]); backends only persist it
//! in the formats real bootloaders read.
//!
//! # Layout
//! - [`state`]: slots, boot order, the transitions and the bootloader's power-on step.
//! - [`store`]: the [`BootStore`] trait every backend implements.
//! - [`medium`]: the bytes a store lives in (file, block device, or power-cut memory).
//! - [`rauc`]: the RAUC variables the U-Boot and GRUB backends share, and each mapping.
//! - [`report`]: the state as a table for people and as JSON for scripts.
//! - [`sim`]: each bootloader's power-on as the simulation plays it (the simulated
//!   board, `skerryctl boot simulate-boot`, the conformance suite).
//! - [`spec`]: store specifications as operators write them (`uboot:PATH,redundant`).
//! - `conformance` (feature `test-support`): the suite every backend passes, torn
//!   writes included.
//! - `power_loss` (feature `test-support`): the check under the lossy page-cache model
//!   and the meta-test that every flush and write order a store relies on is needed.
//! - `fuzz_check`: the round-trip checks the GPT and tryboot fuzz entry points share.

#[cfg(feature = "test-support")]
pub mod conformance;
mod fuzz_check;
pub mod gpt;
pub mod grub;
pub mod medium;
mod open;
#[cfg(feature = "test-support")]
pub mod power_loss;
pub mod rauc;
pub mod report;
pub mod sim;
pub mod spec;
pub mod state;
pub mod store;
pub mod tryboot;
pub mod uboot;

#[cfg(feature = "test-support")]
pub use medium::PowerCutMedium;
pub use medium::{FileMedium, Medium, MemoryMedium};
pub use spec::{SpecError, StoreSpec};
pub use state::{BootError, BootState, GiveUp, SlotName, SlotState, SlotStatus, MAX_TRIES};
pub use store::{BootStore, StoreError};
