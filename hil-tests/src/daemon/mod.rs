//! A simulated board that runs the real `skerryd`: file-backed slots with a real boot
//! store, the bootloader's power-on step from `bootloader-config`, and the daemon as a
//! child process in `--root` mode.
//!
//! A reboot is simulated the way the machine does it: the daemon records its power
//! request in `run/power-request` and stops; the board runs the bootloader's power-on
//! on the store's bytes (passing on a `tryboot` request), writes the slot it started to
//! `run/cmdline`, clears the rest of `run/` and starts the daemon again. A power cut
//! kills the daemon (SIGKILL) and the firmware loses what it kept outside the store.

pub mod pki;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use skerry_boot_state::sim::Machine;
use skerry_boot_state::{BootState, SlotName};
use skerry_watchdog::simulated::SimulatedWatchdogDevice;

use crate::fixtures::Backend;
use crate::images;
use crate::updates::BOARD;

pub use pki::{Identity, Pki, ROLES};

/// How long the daemon may take from exec to serving its API.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);

/// How to build the board.
#[derive(Debug, Clone)]
pub struct DaemonBoardOptions {
    /// The boot store and its bootloader.
    pub backend: Backend,
    /// The factory machine config (`config.yaml` in the root), if any.
    pub config: Option<String>,
    /// Whether the board has a watchdog: a simulated device outside the daemon that
    /// keeps counting, and fires, while the daemon is stopped or hung.
    pub watchdog: bool,
    /// Per-device kernel arguments after `skerry.slot=` on the command line the daemon
    /// reads (`skerry.join=…`, `skerry.logs=…`), as the boot environment adds them.
    pub kernel_args: Vec<String>,
}

impl Default for DaemonBoardOptions {
    fn default() -> Self {
        DaemonBoardOptions {
            backend: Backend::Uboot,
            config: None,
            watchdog: false,
            kernel_args: Vec::new(),
        }
    }
}

/// The board: its files under `dir`, the daemon when running.
pub struct DaemonBoard {
    dir: PathBuf,
    root: PathBuf,
    skerryd: PathBuf,
    machine: Box<dyn Machine>,
    images: BTreeMap<SlotName, PathBuf>,
    pki: Pki,
    watchdog: Option<SimulatedWatchdogDevice>,
    child: Option<Child>,
    api: Option<SocketAddr>,
    running: Option<SlotName>,
    boots: u32,
    kernel_args: Vec<String>,
}

impl std::fmt::Debug for DaemonBoard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DaemonBoard")
            .field("root", &self.root)
            .field("running", &self.running)
            .field("api", &self.api)
            .finish_non_exhaustive()
    }
}

fn write(path: &Path, bytes: impl AsRef<[u8]>) -> anyhow::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}

impl DaemonBoard {
    /// Builds a powered-off board under `dir` whose slot A holds the factory image
    /// (1.0.0, good) and slot B nothing; `skerryd` is the daemon's binary.
    pub fn build(dir: &Path, skerryd: &Path, options: DaemonBoardOptions) -> anyhow::Result<Self> {
        let boot = dir.join("boot");
        std::fs::create_dir_all(&boot)?;
        let factory = images::factory();
        // The fixture writes the store and the slot files; the board keeps its own
        // handle on the store, as the bootloader reads it.
        drop(options.backend.board(&boot, &factory)?);
        let spec = options.backend.spec(&boot);
        let machine = spec.open_simulated()?;
        let mut images = BTreeMap::new();
        for name in ["A", "B"] {
            images.insert(SlotName::new(name)?, boot.join(format!("slot-{name}.img")));
        }
        let root = dir.join("root");
        let slots: Vec<_> = images
            .iter()
            .map(|(name, path)| serde_json::json!({"name": name.as_str(), "image": path}))
            .collect();
        let mut board = serde_json::json!({
            "name": BOARD,
            "boot_store": options.backend.spec_text(&boot),
            "slots": slots,
        });
        // The device lives beside the root, not in its run/ (which every boot clears),
        // so it keeps counting across the daemon's restarts as a board's watchdog does.
        let watchdog =
            if options.watchdog {
                let socket = dir.join("watchdog.sock");
                board["watchdog"] = serde_json::json!({"kind": "simulated", "socket": socket});
                Some(SimulatedWatchdogDevice::bind(&socket).with_context(|| {
                    format!("binding the watchdog device at {}", socket.display())
                })?)
            } else {
                None
            };
        write(&root.join("board.json"), serde_json::to_vec_pretty(&board)?)?;
        if let Some(config) = &options.config {
            write(&root.join("config.yaml"), config)?;
        }
        let pki = Pki::create(&root.join("pki"))?;
        Ok(DaemonBoard {
            dir: dir.to_owned(),
            root,
            skerryd: skerryd.to_owned(),
            machine,
            images,
            pki,
            watchdog,
            child: None,
            api: None,
            running: None,
            boots: 0,
            kernel_args: options.kernel_args,
        })
    }

    /// The machine root the daemon runs on.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// An exec probe command that passes only while the booted slot's image is a
    /// healthy one (its first line, as the demo's images mark it): the "application
    /// health" a broken release fails.
    pub fn image_health_probe(&self) -> Vec<String> {
        let boot = self.dir.join("boot");
        let script = format!(
            "slot=$(sed -n 's/.*skerry.slot=\\([A-Za-z0-9_]*\\).*/\\1/p' '{cmdline}'); head -c {len} '{boot}/slot-'\"$slot\"'.img' | grep -q '{marker}'",
            cmdline = self.root.join("run").join("cmdline").display(),
            boot = boot.display(),
            len = crate::board::HEALTHY_IMAGE.len() - 1,
            marker = String::from_utf8_lossy(&crate::board::HEALTHY_IMAGE[..crate::board::HEALTHY_IMAGE.len() - 1]),
        );
        vec!["sh".into(), "-c".into(), script]
    }

    /// The board's watchdog device, if it has one.
    pub fn watchdog(&self) -> Option<&SimulatedWatchdogDevice> {
        self.watchdog.as_ref()
    }

    /// The machine's PKI (client identities per role).
    pub fn pki(&self) -> &Pki {
        &self.pki
    }

    /// A slot's image file.
    pub fn image(&self, slot: &str) -> Option<&Path> {
        self.images
            .iter()
            .find(|(name, _)| name.as_str() == slot)
            .map(|(_, path)| path.as_path())
    }

    /// The boot state as the store holds it now.
    pub fn boot_state(&mut self) -> anyhow::Result<BootState> {
        Ok(self.machine.store().load()?)
    }

    /// The slot started by the last power-on, while the board is on.
    pub fn running(&self) -> Option<&SlotName> {
        self.running.as_ref()
    }

    /// Where the daemon's API listens, while it runs.
    pub fn api(&self) -> Option<SocketAddr> {
        self.api
    }

    /// A client of the daemon's API with the certificate of `role` (`"os:admin"`…),
    /// or with no certificate for `None`.
    pub async fn client(
        &self,
        role: Option<&str>,
    ) -> anyhow::Result<
        skerry_api::pb::machine_service_client::MachineServiceClient<tonic::transport::Channel>,
    > {
        let Some(api) = self.api else {
            bail!("the daemon is not running");
        };
        let tls = match role {
            Some(role) => {
                let id = self
                    .pki
                    .client(role)
                    .with_context(|| format!("no client identity for role {role}"))?;
                skerry_api::ClientTls::from_pem(&self.pki.ca, &id.cert, &id.key, "127.0.0.1")
            }
            None => skerry_api::ClientTls::anonymous(&self.pki.ca, "127.0.0.1"),
        };
        Ok(skerry_api::connect(&format!("https://{api}"), &tls).await?)
    }

    /// The daemon's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The log of the `n`-th boot (1-based): the daemon's stderr and stdout.
    pub fn log(&self, n: u32) -> PathBuf {
        self.dir.join(format!("skerryd-boot-{n}.log"))
    }

    /// Everything the daemon logged in this board's boots, for failure messages.
    pub fn logs(&self) -> String {
        let mut all = String::new();
        for n in 1..=self.boots {
            let text = std::fs::read_to_string(self.log(n)).unwrap_or_default();
            all.push_str(&format!("--- boot {n} ---\n{text}"));
        }
        all
    }

    /// Power-on: the bootloader picks a slot, the daemon starts on it and serves its API.
    pub fn power_on(&mut self) -> anyhow::Result<SlotName> {
        self.power_on_firmware()?;
        self.start_daemon()
    }

    /// The bootloader's half of a power-on: picks (and counts) a slot without starting
    /// the daemon, as a boot that dies before userspace does; [`DaemonBoard::start_daemon`]
    /// is the other half.
    pub fn power_on_firmware(&mut self) -> anyhow::Result<SlotName> {
        if self.child.is_some() || self.running.is_some() {
            bail!("the board is already on");
        }
        let slot = self.machine.power_on()?;
        self.running = Some(slot.clone());
        Ok(slot)
    }

    /// Starts the daemon on the slot [`DaemonBoard::power_on_firmware`] picked and waits
    /// for its API.
    pub fn start_daemon(&mut self) -> anyhow::Result<SlotName> {
        if self.child.is_some() {
            bail!("the daemon already runs");
        }
        let Some(slot) = self.running.clone() else {
            bail!("the board is off: power it on first");
        };
        let run = self.root.join("run");
        let _ = std::fs::remove_dir_all(&run);
        let mut cmdline = format!("skerry.slot={slot}");
        for arg in &self.kernel_args {
            cmdline.push(' ');
            cmdline.push_str(arg);
        }
        write(&run.join("cmdline"), format!("{cmdline}\n"))?;
        self.boots += 1;
        let log = std::fs::File::create(self.log(self.boots))?;
        // In a session of its own (setsid(1) execs it in place, so the pid is the
        // session's id): a power cut then ends everything it started, as on a board.
        let child = Command::new("setsid")
            .arg(&self.skerryd)
            .arg("--root")
            .arg(&self.root)
            .args(["--listen", "127.0.0.1:0"])
            .env("SKERRYD_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| {
                format!(
                    "starting {} with setsid (Debian package util-linux)",
                    self.skerryd.display()
                )
            })?;
        self.child = Some(child);
        let address = run.join("api-address");
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(text) = std::fs::read_to_string(&address) {
                if let Ok(addr) = text.trim().parse() {
                    self.api = Some(addr);
                    return Ok(slot);
                }
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                bail!(
                    "skerryd exited with {status} before serving its API:\n{}",
                    self.logs()
                );
            }
            if Instant::now() > deadline {
                bail!(
                    "skerryd did not serve its API within {START_TIMEOUT:?}:\n{}",
                    self.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for the daemon to stop by itself and returns its power request
    /// (`reboot`, `reboot tryboot`, `shutdown`); a tryboot request reaches the firmware.
    pub fn wait_for_power_request(&mut self, timeout: Duration) -> anyhow::Result<String> {
        let deadline = Instant::now() + timeout;
        let Some(child) = self.child.as_mut() else {
            bail!("the daemon is not running");
        };
        let status = loop {
            if let Some(status) = child.try_wait()? {
                break status;
            }
            if Instant::now() > deadline {
                bail!(
                    "skerryd made no power request within {timeout:?}:\n{}",
                    self.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        self.child = None;
        self.api = None;
        self.running = None;
        let path = self.root.join("run").join("power-request");
        let request = std::fs::read_to_string(&path)
            .with_context(|| format!("skerryd exited ({status}) without a power request"))?
            .trim()
            .to_owned();
        if !status.success() {
            bail!(
                "skerryd exited with {status} after asking for {request}:\n{}",
                self.logs()
            );
        }
        if request == "reboot tryboot" {
            self.machine.request_reboot("0 tryboot");
        }
        Ok(request)
    }

    /// The power request of a daemon that stopped by itself, without waiting: `None`
    /// while it runs (or when it does not run). The board is then off, as after
    /// [`DaemonBoard::wait_for_power_request`].
    pub fn poll_power_request(&mut self) -> anyhow::Result<Option<String>> {
        let exited = match self.child.as_mut() {
            Some(child) => child.try_wait()?.is_some(),
            None => false,
        };
        if !exited {
            return Ok(None);
        }
        self.wait_for_power_request(Duration::from_secs(1))
            .map(Some)
    }

    /// A reboot the daemon asked for: wait for its request, then power on again.
    pub fn reboot(&mut self, timeout: Duration) -> anyhow::Result<SlotName> {
        let request = self.wait_for_power_request(timeout)?;
        if request == "shutdown" {
            bail!("skerryd asked to shut down, not to reboot");
        }
        self.power_on()
    }

    /// Stops the daemon with SIGTERM and waits for it (an operator's orderly stop).
    pub fn stop(&mut self) -> anyhow::Result<()> {
        if let Some(child) = self.child.as_mut() {
            signal(child.id(), "TERM")?;
            child.wait()?;
        }
        self.child = None;
        self.api = None;
        self.running = None;
        Ok(())
    }

    /// Cuts the power: the daemon is killed where it stands and the firmware forgets
    /// what it kept outside the store (the page cache of the host stays: this cut is a
    /// process kill, the lossy-medium cuts are in the upgrade subsystem's tests).
    pub fn power_cut(&mut self) {
        if let Some(mut child) = self.child.take() {
            let session = child.id();
            let _ = child.kill();
            let _ = child.wait();
            kill_session(session);
        }
        self.machine.power_cut();
        self.api = None;
        self.running = None;
    }

    /// Sends `SIGSTOP` or `SIGCONT` (`"STOP"`, `"CONT"`) to the daemon.
    pub fn signal(&self, name: &str) -> anyhow::Result<()> {
        let Some(child) = self.child.as_ref() else {
            bail!("the daemon is not running");
        };
        signal(child.id(), name)
    }
}

fn signal(pid: u32, name: &str) -> anyhow::Result<()> {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status()
        .context("running kill")?;
    if !status.success() {
        bail!("kill -{name} {pid} failed");
    }
    Ok(())
}

/// Kills every process left in the session `session` (the services of a daemon that
/// was killed: they run in process groups of their own, but in its session).
fn kill_session(session: u32) {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return;
    };
    let left: Vec<String> = entries
        .flatten()
        .filter_map(|entry| {
            let pid = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            // pid (comm) state ppid pgrp session ...: comm may hold spaces and parens.
            let after = &stat[stat.rfind(')')? + 1..];
            let sid: u32 = after.split_whitespace().nth(3)?.parse().ok()?;
            (sid == session && pid != std::process::id()).then(|| pid.to_string())
        })
        .collect();
    if !left.is_empty() {
        let _ = Command::new("kill").arg("-KILL").args(&left).status();
    }
}

impl Drop for DaemonBoard {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let session = child.id();
            let _ = child.kill();
            let _ = child.wait();
            kill_session(session);
        }
    }
}
