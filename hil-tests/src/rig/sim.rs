//! The simulated board as a [`Board`]: [`DaemonBoard`] (the real skerryd in `--root`
//! mode, file-backed slots, the boot store's own bootloader, a simulated watchdog
//! device), with the machine behaviour a real board has by itself:
//!
//! - a reboot the daemon asks for is carried out (the bootloader runs again);
//! - the watchdog device firing resets the board (power cut, power on);
//! - a slot whose image carries a fault marker ([`releases`]) fails its boot before
//!   userspace: `panic-initramfs` resets at once, `hang-initramfs` arms the watchdog
//!   and hangs until it fires; the bootloader counts each attempt.
//!
//! Its console is synthesized from what happens, in the OS image's words
//! (docs/os-image.md: `SKERRY-BOOT slot=A`, `SKERRY-READY slot=A version=…`,
//! `SKERRY-FATAL …`, `SKERRY-POWER …`), so console expectations read the same as on QEMU.
//! Releases come from [`releases::SimReleases`], served over HTTP by the harness's
//! [`RepositoryServer`].

pub mod releases;

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use skerry_watchdog::simulated::Request;

use crate::daemon::{DaemonBoard, DaemonBoardOptions};
use crate::daemon_scenario::machine_config;
use crate::fixtures::Backend;
use crate::rig::{
    ApiEndpoint, Board, BoardEvent, Capabilities, PublishedRelease, ReleaseFactory,
    RepositoryServer, TimedEvent,
};
use crate::updates::BOARD;

pub use releases::{SimReleases, FAULTS};

/// How to build the board.
#[derive(Debug, Clone)]
pub struct SimOptions {
    /// The boot store and its bootloader.
    pub backend: Backend,
    /// How long a new slot's critical checks must hold before it is committed.
    pub probation: Duration,
    /// The watchdog timeout the machine config arms.
    pub watchdog_timeout: Duration,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            backend: Backend::Uboot,
            probation: Duration::from_secs(4),
            watchdog_timeout: Duration::from_secs(3),
        }
    }
}

/// The most boots in a row that may die before userspace.
pub const MAX_PANIC_BOOTS: u32 = 16;

/// What the board is doing.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Power {
    Off,
    /// The daemon runs on this slot.
    Running(String),
    /// A boot hung before userspace, the watchdog armed.
    Hung(String),
}

/// The simulated board.
pub struct SimulatedBoard {
    board: DaemonBoard,
    releases: SimReleases,
    repository: RepositoryServer,
    options: SimOptions,
    power: Power,
    console: String,
    /// Where the next `expect_console` starts looking.
    console_cursor: usize,
    /// Where the next `wait_running` looks for a `SKERRY-READY` line.
    ready_cursor: usize,
    events: Vec<TimedEvent>,
    fires_seen: usize,
    /// Arms of the watchdog device already told on the console.
    arms_seen: usize,
}

impl std::fmt::Debug for SimulatedBoard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimulatedBoard")
            .field("board", &self.board)
            .field("power", &self.power)
            .finish_non_exhaustive()
    }
}

impl SimulatedBoard {
    /// Builds a powered-off board under `dir` (slot A: the factory image 1.0.0), its
    /// release repository served on 127.0.0.1, and its machine config: the stories'
    /// service with a critical check of the image, the update source, and a watchdog.
    pub fn build(dir: &Path, skerryd: &Path, options: SimOptions) -> anyhow::Result<Self> {
        let board = DaemonBoard::build(
            &dir.join("board"),
            skerryd,
            DaemonBoardOptions {
                backend: options.backend,
                config: None,
                watchdog: true,
                ..DaemonBoardOptions::default()
            },
        )?;
        let releases = SimReleases::create(&dir.join("releases"), &crate::images::factory())?;
        let repository = RepositoryServer::start(releases.repo_dir(), 0)?;
        let mut config = machine_config(&board, "sim-rig", None);
        config.push_str(&format!(
            "---
apiVersion: skerry.dev/v1alpha1
kind: UpdateConfig
repository: {url}
trustedRoot: {root}
board: {BOARD}
channel: stable
probation: {probation}s
---
apiVersion: skerry.dev/v1alpha1
kind: WatchdogConfig
device:
  linux:
    path: /dev/watchdog0
timeout: {timeout}ms
",
            url = repository.url(),
            root = releases.trusted_root().display(),
            probation = options.probation.as_secs().max(1),
            timeout = options.watchdog_timeout.as_millis(),
        ));
        let path = board.root().join("config.yaml");
        std::fs::write(&path, config).with_context(|| format!("writing {}", path.display()))?;
        Ok(SimulatedBoard {
            board,
            releases,
            repository,
            options,
            power: Power::Off,
            console: String::new(),
            console_cursor: 0,
            ready_cursor: 0,
            events: Vec::new(),
            fires_seen: 0,
            arms_seen: 0,
        })
    }

    /// The daemon board underneath (its logs, boot state, watchdog record).
    pub fn daemon(&mut self) -> &mut DaemonBoard {
        &mut self.board
    }

    fn say(&mut self, line: impl AsRef<str>) {
        self.console.push_str(line.as_ref());
        self.console.push('\n');
    }

    /// The first line of the booted slot's image.
    fn image_header(&self, slot: &str) -> anyhow::Result<String> {
        let path: PathBuf = self
            .board
            .image(slot)
            .with_context(|| format!("slot {slot} has no image file"))?
            .to_owned();
        let mut head = [0u8; 64];
        let mut file =
            std::fs::File::open(&path).with_context(|| format!("opening {}", path.display()))?;
        let n = std::io::Read::read(&mut file, &mut head)?;
        Ok(String::from_utf8_lossy(&head[..n]).into_owned())
    }

    /// Boots until a boot gets past the initramfs or hangs there, as a board with
    /// `panic=10` does, for at most [`MAX_PANIC_BOOTS`] boots in a row.
    fn boot(&mut self) -> anyhow::Result<()> {
        for _ in 0..MAX_PANIC_BOOTS {
            if !self.boot_once()? {
                return Ok(());
            }
        }
        bail!("{MAX_PANIC_BOOTS} boots in a row panicked; the bootloader never fell back")
    }

    /// One boot: the bootloader picks a slot; the image decides how far it gets.
    /// Returns whether it panicked (and the board reset).
    fn boot_once(&mut self) -> anyhow::Result<bool> {
        let slot = self.board.power_on_firmware()?.to_string();
        self.say(format!("SKERRY-BOOT slot={slot}"));
        let header = self.image_header(&slot)?;
        let first = header.lines().next().unwrap_or("").to_owned();
        let version = header
            .lines()
            .nth(1)
            .and_then(|l| l.strip_prefix("version "))
            .unwrap_or("?")
            .trim()
            .to_owned();
        if let Some(word) = first.strip_prefix(releases::FAULT_MARKER) {
            self.say(format!("SKERRY-INIT stage=initramfs slot={slot}"));
            match word.trim() {
                "hang-initramfs" => {
                    self.arm_watchdog()?;
                    self.arms_seen += 1;
                    self.say(format!(
                        "SKERRY-WATCHDOG armed device=simulated timeout={}",
                        self.options.watchdog_timeout.as_secs_f64()
                    ));
                    self.power = Power::Hung(slot);
                    return Ok(false);
                }
                other => {
                    // panic-initramfs (and any word this board does not model): the
                    // boot dies and the board resets, as `panic=10` makes it.
                    self.say(format!(
                        "SKERRY-FATAL {other} (simulated: slot {slot}'s image fails its boot)"
                    ));
                    self.board.power_cut();
                    self.events.push(TimedEvent {
                        at: Instant::now(),
                        event: BoardEvent::Reset,
                    });
                    self.power = Power::Off;
                    return Ok(true);
                }
            }
        }
        self.board.start_daemon()?;
        let api = self.board.api().map(|a| a.to_string()).unwrap_or_default();
        self.say(format!(
            "SKERRY-READY slot={slot} version={version} api={api}"
        ));
        self.power = Power::Running(slot);
        Ok(false)
    }

    /// Arms the board's watchdog device as an initramfs would, without feeding it again.
    fn arm_watchdog(&self) -> anyhow::Result<()> {
        let device = self
            .board
            .watchdog()
            .context("the simulated board has no watchdog device")?;
        let socket = UnixDatagram::unbound()?;
        socket
            .send_to(
                &Request::Arm(self.options.watchdog_timeout).encode(),
                device.path(),
            )
            .with_context(|| format!("arming the watchdog at {}", device.path().display()))?;
        Ok(())
    }

    /// A watchdog fire the board has not acted on yet.
    fn new_fire(&mut self) -> Option<Instant> {
        let record = self.board.watchdog()?.record();
        let fire = record.fires.get(self.fires_seen).copied();
        self.fires_seen = self.fires_seen.max(record.fires.len());
        fire
    }

    /// Says on the console when the daemon armed the watchdog device, as PID 1 does.
    fn tell_arms(&mut self) {
        let Some(record) = self.board.watchdog().map(|d| d.record()) else {
            return;
        };
        if record.arms.len() > self.arms_seen {
            self.arms_seen = record.arms.len();
            let timeout = record.timeout.unwrap_or_default().as_secs_f64();
            self.say(format!(
                "SKERRY-WATCHDOG armed device=simulated timeout={timeout}"
            ));
        }
    }

    fn reset(&mut self, at: Instant, event: BoardEvent, why: &str) -> anyhow::Result<()> {
        self.say(why);
        self.board.power_cut();
        self.power = Power::Off;
        self.events.push(TimedEvent { at, event });
        self.boot()
    }
}

impl Board for SimulatedBoard {
    fn name(&self) -> String {
        "sim".into()
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            runs_skerryd: true,
            watchdog_resets: true,
            real_kernel: false,
            power_cut: true,
            host_side_install: false,
            hang_daemon: true,
            faults: FAULTS,
            failing_health_check: true,
        }
    }

    fn power_on(&mut self) -> anyhow::Result<()> {
        if self.power != Power::Off {
            bail!("the simulated board is already on");
        }
        self.boot()
    }

    fn power_cut(&mut self) -> anyhow::Result<()> {
        self.board.power_cut();
        if self.power != Power::Off {
            self.say("(power cut)");
            self.events.push(TimedEvent {
                at: Instant::now(),
                event: BoardEvent::PowerCut,
            });
        }
        self.power = Power::Off;
        // A fire while off (a hang's countdown) is not a reset of a running machine.
        if let Some(device) = self.board.watchdog() {
            self.fires_seen = device.record().fires.len();
        }
        Ok(())
    }

    fn expect_console(&mut self, needle: &str, timeout: Duration) -> anyhow::Result<String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(at) = self.console[self.console_cursor..].find(needle) {
                let end = self.console_cursor + at + needle.len();
                let text = self.console[self.console_cursor..end].to_owned();
                self.console_cursor = end;
                return Ok(text);
            }
            if Instant::now() > deadline {
                bail!("{needle:?} did not appear on the console within {timeout:?}");
            }
            self.poll()?;
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn wait_running(&mut self, timeout: Duration) -> anyhow::Result<String> {
        let deadline = Instant::now() + timeout;
        loop {
            self.poll()?;
            let ready = self.console[self.ready_cursor..].contains("SKERRY-READY slot=");
            if let (true, Power::Running(slot)) = (ready, &self.power) {
                let slot = slot.clone();
                self.ready_cursor = self.console.len();
                return Ok(slot);
            }
            if Instant::now() > deadline {
                bail!(
                    "the board ran no slot within {timeout:?} (it is {:?})",
                    self.power
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn api(&self) -> Option<ApiEndpoint> {
        let address = self.board.api()?;
        let admin = self.board.pki().client("os:admin")?;
        Some(ApiEndpoint {
            address,
            ca_pem: self.board.pki().ca.clone().into_bytes(),
            client_cert_pem: admin.cert.clone().into_bytes(),
            client_key_pem: admin.key.clone().into_bytes(),
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
        std::mem::take(&mut self.events)
    }

    fn transcript(&self) -> String {
        format!(
            "{}\n--- skerryd logs ---\n{}",
            self.console,
            self.board.logs()
        )
    }

    fn poll(&mut self) -> anyhow::Result<()> {
        if self.power == Power::Off {
            return Ok(());
        }
        if let Some(at) = self.new_fire() {
            return self.reset(
                at,
                BoardEvent::WatchdogReset,
                "(the watchdog fired: the board resets)",
            );
        }
        if matches!(self.power, Power::Running(_)) {
            self.tell_arms();
            match self.board.poll_power_request() {
                Ok(None) => {}
                Ok(Some(request)) if request.starts_with("reboot") => {
                    self.power = Power::Off;
                    self.say(format!("SKERRY-POWER {request} reason=daemon"));
                    self.events.push(TimedEvent {
                        at: Instant::now(),
                        event: BoardEvent::Reset,
                    });
                    return self.boot();
                }
                Ok(Some(request)) => {
                    self.power = Power::Off;
                    self.say(format!("SKERRY-POWER {request} reason=daemon"));
                    self.events.push(TimedEvent {
                        at: Instant::now(),
                        event: BoardEvent::PoweredOff,
                    });
                }
                Err(e) => {
                    // A daemon that died without a request: PID 1 reboots.
                    let why = format!("SKERRY-FATAL the daemon stopped: {e:#}");
                    return self.reset(Instant::now(), BoardEvent::Reset, &why);
                }
            }
        }
        Ok(())
    }

    fn releases(&mut self) -> Option<&mut dyn ReleaseFactory> {
        Some(&mut self.releases)
    }

    fn repository(&self) -> Option<&RepositoryServer> {
        Some(&self.repository)
    }

    fn watchdog_timeout(&self) -> Option<Duration> {
        Some(self.options.watchdog_timeout)
    }

    fn hang_daemon(&mut self) -> anyhow::Result<()> {
        if !matches!(self.power, Power::Running(_)) {
            bail!("skerryd does not run (the board is {:?})", self.power);
        }
        self.board.signal("STOP")?;
        self.say("(skerryd stopped with SIGSTOP)");
        Ok(())
    }

    fn install_host_side(&mut self, release: &PublishedRelease) -> anyhow::Result<()> {
        Err(crate::rig::Unsupported {
            board: self.name(),
            what: format!(
                "install {} host-side (skerryd installs on this board)",
                release.version
            ),
        }
        .into())
    }

    fn shut_down(&mut self) -> anyhow::Result<()> {
        self.board.power_cut();
        self.power = Power::Off;
        Ok(())
    }
}
