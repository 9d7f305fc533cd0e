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
//! Scenario files (`hil-tests/scenarios/*.toml`, run by [`crate::plan`]) say what they
//! need ([`Need`]); a board whose [`Capabilities`] lack it reports the scenario as not
//! applicable, naming the missing capability.
//!
//! Releases are asked for by what they are ("version 1.1.0, its kernel panics"), never
//! by file: each backend's [`ReleaseFactory`] builds them its way (the simulated board's
//! image files, `skerryctl image build` slot images for QEMU) and publishes them signed
//! into the harness's [`repository::RepositoryServer`] on 127.0.0.1, which can go down,
//! cut a download after N bytes or hold it still (for a power cut mid-install).
//!
//! # Layout
//! - this file: the trait and the types every backend shares;
//! - [`repository`]: the release repository served over HTTP, with its faults;
//! - [`sim`]: the simulated board;
//! - [`real`]: a real board (serial console, power relay);
//! - [`uboot_arm64`]: QEMU's arm64 `virt` machine with U-Boot and busybox guests.

pub mod qemu;
pub mod real;
pub mod repository;
pub mod sim;
pub mod uboot_arm64;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// What a console line starts with when the machine's watchdog was armed.
pub const WATCHDOG_ARMED: &str = "SKERRY-WATCHDOG armed";

pub use repository::{CutRecord, RepositoryFault, RepositoryServer};

/// What a board can do, so a scenario that needs more is skipped with a reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Capabilities {
    /// skerryd runs on it (its API can be called).
    pub runs_skerryd: bool,
    /// A hardware (or emulated hardware) watchdog resets it.
    pub watchdog_resets: bool,
    /// It boots a real kernel, so a kernel can panic or hang.
    pub real_kernel: bool,
    /// The harness can cut its power without asking (a real board needs a relay).
    pub power_cut: bool,
    /// A release can be written into its inactive slot host-side while it is off
    /// (boards without skerryd: [`Board::install_host_side`]); the harness then reads
    /// the bootloader's state from the same media too ([`Board::boot_view`]).
    pub host_side_install: bool,
    /// The running skerryd can be made to hang on demand ([`Board::hang_daemon`]).
    pub hang_daemon: bool,
    /// The fault words its releases can carry (`panic-initramfs`, `hang-initramfs`,
    /// `hang-daemon`: docs/os-image.md "Fault hooks"), as its [`ReleaseFactory`] makes
    /// them. A simulated board says what its analogue is in the scenario files.
    pub faults: &'static [&'static str],
    /// Its [`ReleaseFactory`] can publish a release whose critical health check fails.
    pub failing_health_check: bool,
}

/// One thing a scenario may need from a board, as scenario files name it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Need {
    /// `skerryd`: the device API.
    Skerryd,
    /// `watchdog`: a watchdog that resets the machine.
    Watchdog,
    /// `real_kernel`: a real kernel boots.
    RealKernel,
    /// `power_cut`: the harness cuts power.
    PowerCut,
    /// `host_side_install`.
    HostSideInstall,
    /// `hang_daemon`.
    HangDaemon,
    /// `failing_health_check`.
    FailingHealthCheck,
    /// `fault:WORD`: a release carrying that fault hook.
    Fault(String),
}

impl Need {
    /// Every plain name (a fault is `fault:WORD`).
    pub const NAMES: &'static [&'static str] = &[
        "skerryd",
        "watchdog",
        "real_kernel",
        "power_cut",
        "host_side_install",
        "hang_daemon",
        "failing_health_check",
    ];

    /// Parses a scenario file's name of a need.
    pub fn parse(name: &str) -> Option<Need> {
        Some(match name {
            "skerryd" => Need::Skerryd,
            "watchdog" => Need::Watchdog,
            "real_kernel" => Need::RealKernel,
            "power_cut" => Need::PowerCut,
            "host_side_install" => Need::HostSideInstall,
            "hang_daemon" => Need::HangDaemon,
            "failing_health_check" => Need::FailingHealthCheck,
            other => {
                let word = other.strip_prefix("fault:")?;
                if word.is_empty() {
                    return None;
                }
                Need::Fault(word.to_owned())
            }
        })
    }
}

impl std::fmt::Display for Need {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Need::Skerryd => f.write_str("skerryd"),
            Need::Watchdog => f.write_str("watchdog"),
            Need::RealKernel => f.write_str("real_kernel"),
            Need::PowerCut => f.write_str("power_cut"),
            Need::HostSideInstall => f.write_str("host_side_install"),
            Need::HangDaemon => f.write_str("hang_daemon"),
            Need::FailingHealthCheck => f.write_str("failing_health_check"),
            Need::Fault(word) => write!(f, "fault:{word}"),
        }
    }
}

impl Capabilities {
    /// Whether the board has what `need` names.
    pub fn has(&self, need: &Need) -> bool {
        match need {
            Need::Skerryd => self.runs_skerryd,
            Need::Watchdog => self.watchdog_resets,
            Need::RealKernel => self.real_kernel,
            Need::PowerCut => self.power_cut,
            Need::HostSideInstall => self.host_side_install,
            Need::HangDaemon => self.hang_daemon,
            Need::FailingHealthCheck => self.failing_health_check,
            Need::Fault(word) => self.faults.contains(&word.as_str()),
        }
    }
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

/// A [`BoardEvent`] with when the harness saw it (or, for a simulated watchdog, when the
/// device fired).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimedEvent {
    pub at: Instant,
    pub event: BoardEvent,
}

/// Where a running board's device API is, and how to trust it.
#[derive(Debug, Clone)]
pub struct ApiEndpoint {
    pub address: SocketAddr,
    /// PEM of the CA that signed the device's certificate.
    pub ca_pem: Vec<u8>,
    /// PEM of a client certificate and key the device accepts with the admin role
    /// (`os:admin`: the Upgrade call needs it).
    pub client_cert_pem: Vec<u8>,
    pub client_key_pem: Vec<u8>,
    /// The name the device certificate is issued for.
    pub server_name: String,
}

/// What a release is, as a scenario asks for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReleaseProperty {
    /// A healthy release.
    Good,
    /// Published with a signature the device's trusted root does not accept.
    BadSignature,
    /// Carries the fault hook `WORD` (docs/os-image.md), or the board's analogue.
    Fault(String),
    /// Boots, but its critical health check fails.
    FailingHealthCheck,
}

impl std::fmt::Display for ReleaseProperty {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReleaseProperty::Good => f.write_str("good"),
            ReleaseProperty::BadSignature => f.write_str("bad signature"),
            ReleaseProperty::Fault(word) => write!(f, "fault {word}"),
            ReleaseProperty::FailingHealthCheck => f.write_str("failing health check"),
        }
    }
}

/// A release a scenario asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseRequest {
    pub version: semver::Version,
    pub property: ReleaseProperty,
}

/// A release once published in the board's repository.
#[derive(Debug, Clone)]
pub struct PublishedRelease {
    pub version: semver::Version,
    pub property: ReleaseProperty,
    /// The slot image on the host (for [`Board::install_host_side`]).
    pub image: PathBuf,
    /// The size of the image's pack in the repository (what a full download is).
    pub pack_bytes: u64,
}

/// Builds releases for one board and publishes them, signed, where the board fetches.
pub trait ReleaseFactory {
    /// Builds and publishes `release`; an earlier release of the same version is an
    /// error. A property the board cannot make is an [`Unsupported`] error.
    fn publish(&mut self, release: &ReleaseRequest) -> anyhow::Result<PublishedRelease>;
}

/// What a board without skerryd shows of its boot state: the bootloader's own store
/// read host-side, what the harness installed where, and what the running guest named
/// on its console.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootView {
    /// The boot state as the bootloader's store holds it now.
    pub state: skerry_boot_state::BootState,
    /// The release the harness last wrote into each slot, by slot name.
    pub installed: BTreeMap<String, semver::Version>,
    /// The slot and release the running guest's marker named (`None`: not running).
    pub running: Option<RunningGuest>,
}

/// A guest's `SKERRY-READY slot=A version=1.0.0` marker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunningGuest {
    pub slot: String,
    pub version: String,
}

/// A board cannot do what was asked (the runner reports the scenario as not applicable).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{board} cannot {what}")]
pub struct Unsupported {
    pub board: String,
    pub what: String,
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

    // --- Added for the scenario runner; every one has a default, so a backend
    // implements what it can.

    /// Events seen since the last call, with when they were seen. The default stamps
    /// [`Board::take_events`] with now; boards that know better (a watchdog's fire time)
    /// override it. A board implements either this or `take_events` as the source and
    /// the other on top of it, never both draining separate queues.
    fn take_timed_events(&mut self) -> Vec<TimedEvent> {
        let at = Instant::now();
        self.take_events()
            .into_iter()
            .map(|event| TimedEvent { at, event })
            .collect()
    }

    /// Lets the board do what a machine does by itself between the harness's actions
    /// (a simulated board reboots when its daemon asks, resets when its watchdog fires).
    /// The runner calls it while it waits; emulated and real machines need nothing.
    fn poll(&mut self) -> anyhow::Result<()> {
        Ok(())
    }

    /// The board's release factory, publishing into its repository.
    fn releases(&mut self) -> Option<&mut dyn ReleaseFactory> {
        None
    }

    /// The harness's release repository this board fetches from (to make it go down,
    /// cut or hold a download, and count what it served).
    fn repository(&self) -> Option<&RepositoryServer> {
        None
    }

    /// The timeout the board's watchdog is armed with, once known.
    fn watchdog_timeout(&self) -> Option<Duration> {
        None
    }

    /// Makes the running skerryd hang where it stands (stops feeding the watchdog, stops
    /// answering), as a deadlock would.
    fn hang_daemon(&mut self) -> anyhow::Result<()> {
        Err(Unsupported {
            board: self.name(),
            what: "make skerryd hang".into(),
        }
        .into())
    }

    /// Writes `release` into the inactive slot host-side and starts its trial, with the
    /// board powered off (boards whose guests cannot run the installer).
    fn install_host_side(&mut self, release: &PublishedRelease) -> anyhow::Result<()> {
        Err(Unsupported {
            board: self.name(),
            what: format!("install {} host-side", release.version),
        }
        .into())
    }

    /// The bootloader's state read host-side, with what was installed where and what
    /// runs (boards with `host_side_install`; `None` for the others).
    fn boot_view(&mut self) -> Option<anyhow::Result<BootView>> {
        None
    }

    /// Cuts power and releases whatever the board holds (processes, files); called once
    /// when a scenario ends, passed or not.
    fn shut_down(&mut self) -> anyhow::Result<()> {
        self.power_cut()
    }
}
