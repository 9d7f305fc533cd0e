//! Skerry's hardware-in-the-loop harness: boards and the scenarios that run on them.
//!
//! Today the board is simulated in-process: slot images are files, and the bootloader is
//! the boot-state backend's own power-on step, acting on the same bytes the real
//! bootloader reads (a U-Boot or GRUB environment, GPT attributes, `autoboot.txt`).
//!
//! # Layout
//! - [`board`]: [`SimBoard`], a simulated board with A/B slots and a bootloader.
//! - [`daemon`]: [`DaemonBoard`], the same board running the real `skerryd` as a child
//!   process in `--root` mode, rebooted through its power requests.
//! - [`daemon_scenario`]: the update loop driven through that daemon's API.
//! - [`fleet`]: the real `skerry-server` and simulated devices running `skerryd`'s
//!   fleet client against it (the end-to-end rollout).
//! - [`fixtures`]: a fresh boot-state store of each backend in a scratch directory.
//! - [`images`]: the demo's factory image and the releases cut from it.
//! - [`updates`]: a signed repository of those releases, installed by the real installer.
//! - [`qemu`]: the QEMU runner (real firmware, serial console expect, QMP), for tests
//!   that boot real bootloaders and, later, the real OS image.
//! - [`scenario`]: the A/B stories (upgrade and commit; failed trial and rollback), run
//!   on a board, reporting each step.

pub mod board;
pub mod daemon;
pub mod daemon_scenario;
pub mod fixtures;
pub mod fleet;
pub mod images;
pub mod plan;
pub mod qemu;
pub mod rig;
pub mod scenario;
pub mod updates;

pub use board::{BoardError, SimBoard};
pub use daemon::{DaemonBoard, DaemonBoardOptions};
pub use fixtures::Backend;
