//! The QEMU board: `qemu-system-x86_64 -accel tcg -M q35` booting the disk that
//! `skerryctl image build --board qemu-x86_64` made, through the real chain (OVMF, the
//! ESP's standalone GRUB, the slot's kernel and initramfs, skerryd as PID 1).
//!
//! - Firmware: OVMF's code as read-only pflash, a private copy of its variables.
//! - Disk: a private copy of the built image (reflink or sparse copy), as `virtio-blk`;
//!   it lives as long as the board, across power cuts.
//! - Watchdog: `-device i6300esb -action watchdog=reset`. QMP's `WATCHDOG` and `RESET`
//!   events tell a watchdog reset from a guest reset, `SHUTDOWN` a power-off
//!   ([`events`]).
//! - Reboots: no `-no-reboot`. A guest reset restarts the machine inside the same QEMU
//!   process, as a real board's reset keeps its power: the console is one stream across
//!   reboots (so a scenario can expect GRUB's fallback after the reset that caused it),
//!   QEMU reports the reset's cause, and nothing is lost that a real reset would keep. A
//!   guest power-off ends QEMU; [`Board::power_on`] starts it again.
//! - Power cut: SIGKILL to QEMU by its PID, without asking; the next power-on starts a new
//!   QEMU on the same disk and variables. What the guest had not flushed is lost.
//! - Network: slirp with `restrict=on`; the device API (guest port 50000) is forwarded
//!   from a port on 127.0.0.1, and the guest's `10.0.2.100:8080` reaches the harness's
//!   release repository on 127.0.0.1 (one `busybox nc` per connection: see
//!   [`crate::qemu::GuestForward`]). Nothing else leaves the guest.
//! - API: the device's CA and node certificate were put on the ESP at build time
//!   (`skerryctl image build --pki DIR`); the board holds client identities of that CA.
//!
//! # Layout
//! - this file: [`QemuBoard`] and its [`Board`] implementation;
//! - [`events`]: QMP events as board events;
//! - [`console_lines`]: the `SKERRY-…` lines it reads;
//! - [`artifacts`]: the static programs (built once per run) and `skerryctl image build`;
//! - [`releases`]: the board's [`ReleaseFactory`]: slot images built and signed into the
//!   served repository.

pub mod artifacts;
pub mod console_lines;
pub mod events;
pub mod releases;

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};

use crate::daemon::pki::Pki;
use crate::qemu::files::{need_file, need_tool, ovmf_vars_copy, run_tool, OVMF_CODE_4M};
use crate::qemu::{
    DriveBus, GuestForward, HostForward, MachineConfig, Qemu, ResetPolicy, UserNetwork,
};
use crate::rig::{
    ApiEndpoint, Board, BoardEvent, Capabilities, ReleaseFactory, RepositoryServer, TimedEvent,
};

pub use events::EventTranslator;
pub use releases::{QemuReleases, Site};

/// The table name of this board.
pub const BOARD_NAME: &str = "qemu-x86_64";
/// The board definition the images are built for.
pub const BOARD_DEFINITION: &str = "qemu-x86_64";
/// The device API's port in the guest (docs/os-image.md).
pub const GUEST_API_PORT: u16 = 50000;
/// Where the guest finds the release repository.
pub const GUEST_REPOSITORY: (Ipv4Addr, u16) = (Ipv4Addr::new(10, 0, 2, 100), 8080);
/// The repository's URL as the device sees it.
pub const GUEST_REPOSITORY_URL: &str = "http://10.0.2.100:8080";
/// The fault words a release of this board can carry (built with `skerryd-fault-hooks`).
pub const FAULTS: &[&str] = &["panic-initramfs", "hang-initramfs", "hang-daemon"];
/// The guest port of a fault-hooks skerryd's on-demand trigger
/// (firmware/skerryd/src/fault.rs `TRIGGER_PORT`).
pub const GUEST_FAULT_TRIGGER_PORT: u16 = 50099;
/// How long the trigger may take to answer.
const TRIGGER_ANSWER: Duration = Duration::from_secs(10);
/// Guest memory: the generic kernel and its initramfs unpack comfortably in it.
const MEMORY_MIB: u32 = 512;

/// What a QEMU board is made of.
#[derive(Debug)]
pub struct QemuBoardSpec {
    /// The disk image `skerryctl image build` wrote (copied; the original is not touched).
    pub disk: PathBuf,
    /// Client identities of the CA whose node certificate went onto the ESP (`None`: the
    /// image has no device PKI, so [`Board::api`] is `None`).
    pub pki: Option<Pki>,
    /// The release repository the guest reaches at [`GUEST_REPOSITORY_URL`].
    pub repository: Option<RepositoryServer>,
    /// Builds and publishes releases into that repository.
    pub releases: Option<QemuReleases>,
    /// Whether the image runs skerryd (PID 1 and its API), so scenarios needing it apply.
    pub runs_skerryd: bool,
    /// Whether the booted skerryd is a fault-hooks build, whose on-demand trigger
    /// [`Board::hang_daemon`] uses.
    pub fault_trigger: bool,
    /// More addresses the guest reaches on the host (a fleet server's ports), each
    /// relayed by `busybox nc` to a port on 127.0.0.1.
    pub services: Vec<GuestService>,
}

/// A TCP address in the guest's network answered by a port on the host's 127.0.0.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuestService {
    pub guest_address: Ipv4Addr,
    pub guest_port: u16,
    pub host_port: u16,
}

impl GuestService {
    fn forward(&self) -> GuestForward {
        GuestForward {
            guest_address: self.guest_address,
            guest_port: self.guest_port,
            command: format!("busybox nc 127.0.0.1 {}", self.host_port),
        }
    }
}

/// A running or powered-off QEMU board.
#[derive(Debug)]
pub struct QemuBoard {
    dir: tempfile::TempDir,
    disk: PathBuf,
    vars: PathBuf,
    api_port: u16,
    trigger_port: u16,
    spec: QemuBoardSpec,
    machine: Option<Qemu>,
    /// The consoles of machines no longer running (power cuts, power-offs), in order.
    past_consoles: String,
    translator: EventTranslator,
    events: Vec<TimedEvent>,
    /// The slot the last `SKERRY-READY` named, while that machine runs, and when.
    running: Option<console_lines::Ready>,
    ready_at: Option<Instant>,
    power_ons: u32,
    /// How many boots the running QEMU's console showed when skerryd's `SKERRY-READY`
    /// was last seen (the boot it belongs to).
    ready_boot: Option<usize>,
}

impl QemuBoard {
    /// A powered-off board with its own copies of `spec.disk` and OVMF's variables.
    pub fn new(spec: QemuBoardSpec) -> anyhow::Result<QemuBoard> {
        need_tool(
            "qemu-system-x86_64",
            "qemu-system-x86 (from bookworm-backports)",
        )?;
        need_file(OVMF_CODE_4M, "ovmf")?;
        if spec.repository.is_some() || !spec.services.is_empty() {
            // The guest's repository and service connections are relayed by `busybox nc`.
            need_tool("busybox", "busybox-static")?;
        }
        let dir = tempfile::Builder::new()
            .prefix("skerry-qemu-board")
            .tempdir()
            .context("creating the QEMU board's directory")?;
        let disk = dir.path().join("disk.img");
        copy_disk(&spec.disk, &disk)?;
        let vars = ovmf_vars_copy(dir.path())?;
        let api_port = free_port()?;
        let trigger_port = free_port()?;
        Ok(QemuBoard {
            dir,
            disk,
            vars,
            api_port,
            trigger_port,
            spec,
            machine: None,
            past_consoles: String::new(),
            translator: EventTranslator::default(),
            events: Vec::new(),
            running: None,
            ready_at: None,
            power_ons: 0,
            ready_boot: None,
        })
    }

    /// A fresh board of `site`: its first disk, a repository holding only the first
    /// release served on 127.0.0.1, and the site's device PKI.
    pub fn from_site(site: &Arc<Site>) -> anyhow::Result<QemuBoard> {
        let releases = QemuReleases::new(site)?;
        let repository = RepositoryServer::start(releases.repository(), 0)?;
        QemuBoard::new(QemuBoardSpec {
            disk: site.first_disk().disk.clone(),
            pki: Some(site.pki().clone()),
            repository: Some(repository),
            releases: Some(releases),
            runs_skerryd: true,
            // The site's first slot carries the fault-hooks skerryd.
            fault_trigger: true,
            services: Vec::new(),
        })
    }

    /// The board's copy of the disk (what the guest writes).
    pub fn disk(&self) -> &Path {
        &self.disk
    }

    /// The host port forwarded to the guest's API port.
    pub fn api_port(&self) -> u16 {
        self.api_port
    }

    /// The running machine, for what the [`Board`] trait does not cover (QMP commands).
    pub fn machine(&mut self) -> Option<&mut Qemu> {
        self.machine.as_mut()
    }

    /// What `SKERRY-READY` last said (slot, version, API), while that machine runs.
    pub fn ready(&self) -> Option<&console_lines::Ready> {
        self.running.as_ref()
    }

    /// How many times QEMU was started.
    pub fn power_ons(&self) -> u32 {
        self.power_ons
    }

    fn machine_config(&self) -> MachineConfig {
        let mut network = UserNetwork {
            restrict: true,
            host_forwards: vec![
                HostForward {
                    host_port: self.api_port,
                    guest_port: GUEST_API_PORT,
                },
                HostForward {
                    host_port: self.trigger_port,
                    guest_port: GUEST_FAULT_TRIGGER_PORT,
                },
            ],
            guest_forwards: Vec::new(),
        };
        if let Some(repo) = &self.spec.repository {
            network.guest_forwards.push(
                GuestService {
                    guest_address: GUEST_REPOSITORY.0,
                    guest_port: GUEST_REPOSITORY.1,
                    host_port: repo.addr().port(),
                }
                .forward(),
            );
        }
        network
            .guest_forwards
            .extend(self.spec.services.iter().map(GuestService::forward));
        // Two vCPUs (multi-threaded TCG, one host thread each): with one, an install's
        // hashing and writeback starve the daemon's health checks into timeouts.
        MachineConfig::new("qemu-system-x86_64", "q35")
            .memory_mib(MEMORY_MIB)
            .extra_arg("-smp")
            .extra_arg("2")
            .drive(DriveBus::Pflash { unit: 0 }, Path::new(OVMF_CODE_4M), true)
            .drive(DriveBus::Pflash { unit: 1 }, &self.vars, false)
            .drive(DriveBus::Virtio { id: "disk".into() }, &self.disk, false)
            .device("i6300esb")
            // The board's hardware RNG (a Pi's bcm2835-rng, a box's TPM or RDRAND).
            .device("virtio-rng-pci")
            .watchdog_action("reset")
            .reset(ResetPolicy::Restart)
            .network(network)
    }

    /// Moves a machine that is gone (power cut, power-off) into the past.
    fn retire_machine(&mut self) {
        if let Some(mut machine) = self.machine.take() {
            self.drain_events(&mut machine);
            machine.power_cut();
            self.past_consoles.push_str(&machine.console().transcript());
        }
        self.running = None;
        self.ready_at = None;
        self.ready_boot = None;
    }

    fn drain_events(&mut self, machine: &mut Qemu) {
        let _ = machine.qmp().pump(Duration::from_millis(1));
        for event in machine.qmp().take_events() {
            if let Some(timed) = self.translator.translate(&event) {
                // A reset after the slot came up reboots it in place: it runs no more.
                if self.ready_at.is_some_and(|ready| timed.at >= ready) {
                    self.running = None;
                    self.ready_at = None;
                }
                self.events.push(timed);
            }
        }
    }

    /// Reads QMP events, and notices a QEMU that ended by itself (a guest power-off), and
    /// a slot that came up again by itself after a reset (a rollback's reboot, a watchdog
    /// reset) without anyone waiting for it: its API is usable once its `SKERRY-READY`
    /// line is on the console.
    fn refresh(&mut self) {
        if let Some(mut machine) = self.machine.take() {
            self.drain_events(&mut machine);
            let exited = machine.has_exited();
            if !exited && self.running.is_none() {
                let transcript = machine.console_transcript();
                let boots = console_lines::boots(&transcript);
                // The boot whose READY was seen already (and then reset) does not count.
                if self.ready_boot.is_none_or(|seen| boots > seen) {
                    if let Some(Ok(ready)) = console_lines::ready_in_current_boot(&transcript) {
                        self.running = Some(ready);
                        self.ready_at = Some(Instant::now());
                        self.ready_boot = Some(boots);
                    }
                }
            }
            self.machine = Some(machine);
            if exited {
                self.retire_machine();
            }
        }
    }

    fn running_machine(&mut self, doing: &str) -> anyhow::Result<&mut Qemu> {
        match self.machine.as_mut() {
            Some(m) => Ok(m),
            None => bail!("{BOARD_NAME} is powered off: cannot {doing}"),
        }
    }
}

impl Board for QemuBoard {
    fn name(&self) -> String {
        BOARD_NAME.to_owned()
    }

    fn capabilities(&self) -> Capabilities {
        let factory = self.spec.releases.as_ref();
        Capabilities {
            runs_skerryd: self.spec.runs_skerryd,
            watchdog_resets: true,
            real_kernel: true,
            power_cut: true,
            host_side_install: false,
            hang_daemon: self.spec.runs_skerryd && self.spec.fault_trigger,
            faults: factory.map_or(&[], QemuReleases::faults),
            failing_health_check: factory.is_some_and(QemuReleases::can_fail_health_check),
        }
    }

    fn power_on(&mut self) -> anyhow::Result<()> {
        self.refresh();
        if self.machine.is_some() {
            bail!("{BOARD_NAME} is already powered on");
        }
        let run_dir = self.dir.path().join(format!("run-{}", self.power_ons + 1));
        std::fs::create_dir_all(&run_dir)
            .with_context(|| format!("creating {}", run_dir.display()))?;
        let machine = match Qemu::start(&self.machine_config(), &run_dir) {
            Ok(m) => m,
            Err(first) => {
                // The API port may have been taken since it was picked; pick another once.
                self.api_port = free_port()?;
                self.trigger_port = free_port()?;
                Qemu::start(&self.machine_config(), &run_dir)
                    .with_context(|| format!("starting QEMU (first attempt: {first})"))?
            }
        };
        self.power_ons += 1;
        self.translator = EventTranslator::default();
        self.machine = Some(machine);
        Ok(())
    }

    fn power_cut(&mut self) -> anyhow::Result<()> {
        if self.machine.is_some() {
            self.retire_machine();
            self.events.push(TimedEvent {
                at: Instant::now(),
                event: BoardEvent::PowerCut,
            });
        }
        Ok(())
    }

    fn expect_console(&mut self, needle: &str, timeout: Duration) -> anyhow::Result<String> {
        let machine = self.running_machine(&format!("wait for {needle:?}"))?;
        let found = machine.console().expect(needle, timeout);
        self.refresh();
        Ok(found?)
    }

    fn wait_running(&mut self, timeout: Duration) -> anyhow::Result<String> {
        let deadline = Instant::now() + timeout;
        self.expect_console("SKERRY-READY", timeout)?;
        let left = deadline.saturating_duration_since(Instant::now());
        let rest = self.expect_console("\n", left.max(Duration::from_secs(5)))?;
        let ready = console_lines::ready(&rest).map_err(anyhow::Error::msg)?;
        let slot = ready.slot.clone();
        self.running = Some(ready);
        self.ready_at = Some(Instant::now());
        self.ready_boot = self
            .machine
            .as_ref()
            .map(|m| console_lines::boots(&m.console_transcript()));
        Ok(slot)
    }

    fn api(&self) -> Option<ApiEndpoint> {
        self.running.as_ref()?;
        let pki = self.spec.pki.as_ref()?;
        let client = pki.client("os:admin")?;
        Some(ApiEndpoint {
            address: SocketAddr::from((Ipv4Addr::LOCALHOST, self.api_port)),
            ca_pem: pki.ca.clone().into_bytes(),
            client_cert_pem: client.cert.clone().into_bytes(),
            client_key_pem: client.key.clone().into_bytes(),
            server_name: "127.0.0.1".into(),
        })
    }

    fn take_events(&mut self) -> Vec<BoardEvent> {
        self.take_timed_events()
            .into_iter()
            .map(|e| e.event)
            .collect()
    }

    fn take_timed_events(&mut self) -> Vec<TimedEvent> {
        self.refresh();
        std::mem::take(&mut self.events)
    }

    fn transcript(&self) -> String {
        let mut all = self.past_consoles.clone();
        if let Some(machine) = &self.machine {
            all.push_str(&machine.console_transcript());
        }
        all
    }

    fn poll(&mut self) -> anyhow::Result<()> {
        self.refresh();
        Ok(())
    }

    fn releases(&mut self) -> Option<&mut dyn ReleaseFactory> {
        self.spec
            .releases
            .as_mut()
            .map(|r| r as &mut dyn ReleaseFactory)
    }

    fn repository(&self) -> Option<&RepositoryServer> {
        self.spec.repository.as_ref()
    }

    fn watchdog_timeout(&self) -> Option<Duration> {
        console_lines::watchdog_timeout(&self.transcript())
    }

    /// Asks the fault-hooks skerryd's on-demand trigger to hang the daemon now; done
    /// when it answers `ok hang-daemon` (it blocks its runtime right after).
    fn hang_daemon(&mut self) -> anyhow::Result<()> {
        use std::io::{Read as _, Write as _};
        if !self.capabilities().hang_daemon {
            return Err(crate::rig::Unsupported {
                board: BOARD_NAME.into(),
                what: "make skerryd hang (its image has no fault-hooks skerryd)".into(),
            }
            .into());
        }
        if self.running.is_none() {
            bail!("{BOARD_NAME} runs no skerryd now: wait_running first");
        }
        let address = SocketAddr::from((Ipv4Addr::LOCALHOST, self.trigger_port));
        let mut conn = std::net::TcpStream::connect_timeout(&address, TRIGGER_ANSWER)
            .with_context(|| format!("connecting to the fault trigger through {address}"))?;
        conn.set_read_timeout(Some(TRIGGER_ANSWER))?;
        conn.write_all(b"hang-daemon\n")
            .context("sending hang-daemon to the fault trigger")?;
        let mut answer = Vec::new();
        conn.take(256)
            .read_to_end(&mut answer)
            .context("reading the fault trigger's answer")?;
        let answer = String::from_utf8_lossy(&answer);
        if answer.trim() != "ok hang-daemon" {
            bail!(
                "the fault trigger answered {:?}, not \"ok hang-daemon\"",
                answer.trim()
            );
        }
        Ok(())
    }

    fn shut_down(&mut self) -> anyhow::Result<()> {
        self.power_cut()
    }
}

impl Drop for QemuBoard {
    fn drop(&mut self) {
        if let Some(mut machine) = self.machine.take() {
            machine.power_cut();
        }
    }
}

/// A port on 127.0.0.1 that was free a moment ago.
pub(crate) fn free_port() -> anyhow::Result<u16> {
    let listener =
        TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("finding a free port on 127.0.0.1")?;
    Ok(listener.local_addr()?.port())
}

/// Copies a disk image cheaply: a reflink where the filesystem has them, else a sparse
/// copy (the state partition and slot B are zeros on a fresh disk).
pub fn copy_disk(from: &Path, to: &Path) -> anyhow::Result<()> {
    if !from.is_file() {
        bail!("the disk image {} does not exist", from.display());
    }
    run_tool(
        Command::new("cp")
            .args(["--reflink=auto", "--sparse=always"])
            .arg(from)
            .arg(to),
    )
    .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    Ok(())
}
