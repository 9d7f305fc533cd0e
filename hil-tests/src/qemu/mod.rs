//! The QEMU runner: start a machine with real firmware (U-Boot, OVMF) and drives, talk to
//! its serial console and to QEMU itself over QMP, and see what the guest left in its
//! flash and disk images. Used by the real-bootloader tests (`tests/uboot_boot_count.rs`,
//! `tests/grub_efi_boot_count.rs`) and meant for the QEMU board (real OS image, i6300esb
//! watchdog: [`MachineConfig::device`], [`MachineConfig::watchdog_action`],
//! [`ResetPolicy::Exit`], and the `WATCHDOG`/`RESET`/`SHUTDOWN` events of [`Qmp`]).
//!
//! Always TCG (KVM guests hang on these machines); `-nic none` unless the machine has a
//! [`UserNetwork`] (slirp with `restrict=on`, forwards to and from 127.0.0.1 only).
//!
//! # Layout
//! - [`config`]: [`MachineConfig`], the machine as typed parts, and its arguments.
//! - [`machine`]: [`Qemu`], a running machine; killed on drop.
//! - [`console`]: [`Console`], expect with timeouts on partial lines, and typing lines.
//! - [`transcript`]: [`Transcript`], the pure matching logic under the console.
//! - [`qmp`]: [`Qmp`], commands (reset, power-off, quit) and events.
//! - [`files`]: firmware paths, sparse flash images, OVMF variable copies, host tools.
//! - [`esp`]: [`EspImage`], a GPT disk with a FAT ESP, built and read without mounts.
//! - [`error`]: [`QemuError`], what went wrong and where.

pub mod config;
pub mod console;
pub mod error;
pub mod esp;
pub mod files;
pub mod machine;
pub mod qmp;
pub mod transcript;

pub use config::{
    Drive, DriveBus, GuestForward, HostForward, MachineConfig, ResetPolicy, UserNetwork,
};
pub use console::Console;
pub use error::QemuError;
pub use esp::EspImage;
pub use machine::Qemu;
pub use qmp::{Qmp, QmpEvent};
pub use transcript::Transcript;
