//! The `Board` abstraction: one scenario file runs on every board that can run it.
//!
//! A board is powered, has a console, and (when it runs skerryd) an API. Backends:
//! - `sim`: the simulated board (`crate::daemon::DaemonBoard`: skerryd in `--root` mode,
//!   the boot-state store's simulated bootloader, a simulated watchdog);
//! - `qemu`: `qemu-system-x86_64 -accel tcg -M q35` with OVMF, GRUB-EFI, i6300esb and the
//!   disk built by `skerryctl image build` (see docs/os-image.md);
//! - `uboot_arm64`: QEMU's arm64 `virt` machine with U-Boot, env in pflash, busybox
//!   guests (no Rust binary runs there);
//! - `real`: a board on a serial console with its power on a relay.
//!
//! Scenario files (`hil-tests/scenarios/*.toml`) say what they need
//! ([`Capabilities`]); a board that lacks it reports the scenario as not applicable.

use std::net::SocketAddr;
use std::time::Duration;

/// What a board can do, so a scenario that needs more is skipped with a reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Capabilities {
    /// skerryd runs on it (its API can be called).
    pub runs_skerryd: bool,
    /// A hardware (or emulated hardware) watchdog resets it.
    pub watchdog_resets: bool,
    /// It boots a real kernel, so a kernel can panic or hang.
    pub real_kernel: bool,
}

/// How a board went down or came up, as the board saw it (QMP events, relay, process).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BoardEvent {
    /// Power was cut (the harness did it, not the guest).
    PowerCut,
    /// The watchdog fired and reset the machine.
    WatchdogReset,
    /// The machine reset itself (reboot(2), a kernel panic with `panic=N`).
    Reset,
    /// The machine powered itself off.
    PoweredOff,
}

/// Where a running board's device API is, and how to trust it.
#[derive(Debug, Clone)]
pub struct ApiEndpoint {
    pub address: SocketAddr,
    /// PEM of the CA that signed the device's certificate.
    pub ca_pem: Vec<u8>,
    /// PEM of an operator client certificate and key the device accepts.
    pub client_cert_pem: Vec<u8>,
    pub client_key_pem: Vec<u8>,
    /// The name the device certificate is issued for.
    pub server_name: String,
}

/// One board under test.
pub trait Board {
    /// A short name for tables: `sim`, `qemu-x86_64`, `qemu-arm64-uboot`, `real:NAME`.
    fn name(&self) -> String;
    fn capabilities(&self) -> Capabilities;
    /// Powers on (the bootloader then picks a slot by itself).
    fn power_on(&mut self) -> anyhow::Result<()>;
    /// Cuts power without asking the guest; nothing unflushed survives.
    fn power_cut(&mut self) -> anyhow::Result<()>;
    /// Waits until `needle` appears on the console after the last match (partial lines
    /// match: U-Boot's prompt has no newline) and returns the text up to and including it.
    fn expect_console(&mut self, needle: &str, timeout: Duration) -> anyhow::Result<String>;
    /// Waits until the machine runs a slot (its `SKERRY-READY` line, or for busybox
    /// guests its marker) and returns the slot's name.
    fn wait_running(&mut self, timeout: Duration) -> anyhow::Result<String>;
    /// The device API, once `wait_running` returned (`None` without skerryd).
    fn api(&self) -> Option<ApiEndpoint>;
    /// Events seen since the last call (resets, watchdog, power).
    fn take_events(&mut self) -> Vec<BoardEvent>;
    /// Everything the console printed so far (for a failing scenario's report).
    fn transcript(&self) -> String;
}
