//! One simulated device of the fleet: a [`DaemonBoard`] running the real `skerryd`,
//! its factory machine config pointing the fleet client at the server and the update
//! subsystem at the server's repository. [`FleetDevice::tick`], called by whoever waits
//! on the fleet, powers the board on again whenever its daemon stopped with a reboot
//! request (the fleet client's upgrades and the probation's rollbacks reboot by
//! themselves).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context as _};
use serde_json::Value;
use skerry_api::pb;
use skerry_boot_state::BootState;

use crate::daemon::{DaemonBoard, DaemonBoardOptions};
use crate::daemon_scenario::decode_spec;
use crate::fleet::releases::{FleetReleases, CHANNEL, FACTORY_VERSION};
use crate::updates::BOARD;

/// The fleet client's status resource (`skerryd_fleet::FleetStatus`).
pub const FLEET_NAMESPACE: &str = "fleet";
pub const FLEET_STATUS_TYPE: &str = "FleetStatuses.fleet.skerry.dev";
/// How long a new slot's critical checks must hold before it is committed.
pub const PROBATION: Duration = Duration::from_secs(3);
/// The check-in interval a device is configured with: the shortest a `FleetConfig`
/// accepts (`pollInterval`, at least 5 s).
pub const POLL_INTERVAL: Duration = Duration::from_secs(5);

/// How a device's application fares on the release rolled out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceRole {
    /// Its critical check passes on every healthy image.
    Healthy,
    /// Its critical check passes only on a 1.x image: this unit's hardware needs what
    /// 2.0.0 dropped, so its probation on 2.0.0 fails and it rolls back.
    FailsOn2,
}

/// A device: its board, and what went wrong keeping it powered.
pub struct FleetDevice {
    id: String,
    board: DaemonBoard,
    problems: Vec<String>,
    on: bool,
}

impl std::fmt::Debug for FleetDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FleetDevice")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl FleetDevice {
    /// Builds the powered-off board `id` under `dir`: factory image 1.0.0 in slot A
    /// (recorded as such in the installer's state, as the factory's flashing does), and
    /// the machine config for `role` checking in with `server`.
    pub fn build(
        dir: &Path,
        skerryd: &Path,
        id: &str,
        role: DeviceRole,
        server: &str,
        repository: &str,
        releases: &FleetReleases,
    ) -> anyhow::Result<Self> {
        let board = DaemonBoard::build(dir, skerryd, DaemonBoardOptions::default())?;
        let probe = match role {
            DeviceRole::Healthy => board.image_health_probe(),
            DeviceRole::FailsOn2 => version_probe(&board, "1."),
        };
        let config = machine_config(id, &probe, server, repository, &releases.trusted_root);
        let path = board.root().join("config.yaml");
        std::fs::write(&path, config).with_context(|| format!("writing {}", path.display()))?;
        record_factory_release(board.root(), &releases.trusted_root)?;
        Ok(FleetDevice {
            id: id.to_owned(),
            board,
            problems: Vec::new(),
            on: false,
        })
    }

    /// The device id (its hostname), as the server knows it.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Powers the board on; from now on [`FleetDevice::tick`] keeps it on.
    pub fn power_on(&mut self) -> anyhow::Result<()> {
        if self.on {
            bail!("device {} is already on", self.id);
        }
        self.board.power_on()?;
        self.on = true;
        Ok(())
    }

    /// If the daemon stopped with a reboot request, powers the board on again (this
    /// waits for the new daemon's API). Anything else is kept in
    /// [`FleetDevice::problems`] and the board stays off.
    pub fn tick(&mut self) {
        if !self.on {
            return;
        }
        let problem = match self.board.poll_power_request() {
            Ok(None) => return,
            Ok(Some(request)) if request.starts_with("reboot") => match self.board.power_on() {
                Ok(_) => return,
                Err(e) => format!("powering on after {request:?}: {e:#}"),
            },
            Ok(Some(request)) => format!("the daemon asked for {request:?}, not a reboot"),
            Err(e) => format!("the daemon stopped badly: {e:#}"),
        };
        self.problems.push(problem);
        self.on = false;
    }

    /// Stops the daemon (SIGTERM, waited for).
    pub fn shut_down(&mut self) -> anyhow::Result<()> {
        self.on = false;
        self.board.stop()
    }

    /// What went wrong keeping the board powered (a reboot that failed), if anything.
    pub fn problems(&self) -> &[String] {
        &self.problems
    }

    /// The boot state as the store holds it now.
    pub fn boot_state(&mut self) -> anyhow::Result<BootState> {
        self.board.boot_state()
    }

    /// The slot the board runs now (none while it reboots).
    pub fn running(&self) -> Option<String> {
        self.board.running().map(|s| s.to_string())
    }

    /// The release each slot holds, as the device's installer state records it.
    pub fn slot_releases(&self) -> anyhow::Result<BTreeMap<String, String>> {
        let dir = self.board.root().join("var/skerry/installer");
        Ok(skerry_installer::state::load_slots(&dir)?
            .into_iter()
            .map(|(slot, r)| (slot, r.version))
            .collect())
    }

    /// Every boot's daemon log, for failure messages.
    pub fn logs(&self) -> String {
        self.board.logs()
    }

    /// The fleet client's status (`server`, `decision`, `queued`, `acknowledged`…);
    /// an error while the daemon is down.
    pub async fn fleet_status(&self) -> anyhow::Result<Value> {
        let (api, tls) = {
            let board = &self.board;
            let api = board.api().context("the daemon is not running")?;
            let id = board
                .pki()
                .client("os:reader")
                .context("no reader identity")?;
            let tls =
                skerry_api::ClientTls::from_pem(&board.pki().ca, &id.cert, &id.key, "127.0.0.1");
            (api, tls)
        };
        let mut client = skerry_api::connect(&format!("https://{api}"), &tls).await?;
        let answer = client
            .resource_get(pb::ResourceGetRequest {
                r#ref: Some(pb::ResourceRef {
                    namespace: FLEET_NAMESPACE.into(),
                    r#type: FLEET_STATUS_TYPE.into(),
                    id: "status".into(),
                }),
            })
            .await?
            .into_inner();
        let resource = answer
            .resource
            .context("the fleet status came without a resource")?;
        decode_spec(&resource.spec_yaml)
    }
}

/// The factory's record that slot A holds [`FACTORY_VERSION`] of the repository the
/// device trusts, so the device reports the version it runs from its first check-in.
fn record_factory_release(root: &Path, trusted_root: &Path) -> anyhow::Result<()> {
    let dir = root.join("var/skerry/installer");
    let root_bytes = std::fs::read(trusted_root)
        .with_context(|| format!("reading {}", trusted_root.display()))?;
    let repo = skerry_installer::state::repository_dir(&dir, &root_bytes)?;
    let name = repo
        .file_name()
        .and_then(|n| n.to_str())
        .context("the installer's repository directory has no name")?
        .to_owned();
    skerry_installer::state::record_slot(
        &dir,
        "A",
        skerry_installer::state::SlotRelease {
            repository: name,
            board: BOARD.into(),
            version: FACTORY_VERSION.into(),
            partial: false,
        },
    )?;
    Ok(())
}

/// A probe that passes only while the booted slot's image header names a version
/// starting with `prefix`.
fn version_probe(board: &DaemonBoard, prefix: &str) -> Vec<String> {
    let boot: PathBuf = board
        .image("A")
        .and_then(Path::parent)
        .map(Path::to_owned)
        .unwrap_or_default();
    let script = format!(
        "slot=$(sed -n 's/.*skerry.slot=\\([A-Za-z0-9_]*\\).*/\\1/p' '{cmdline}'); head -c 64 '{boot}/slot-'\"$slot\"'.img' | grep -q 'version {prefix}'",
        cmdline = board.root().join("run").join("cmdline").display(),
        boot = boot.display(),
    );
    vec!["sh".into(), "-c".into(), script]
}

/// The device's factory config: its name, the application whose critical check is
/// `probe`, the server's repository as the update source, and the fleet server.
fn machine_config(
    id: &str,
    probe: &[String],
    server: &str,
    repository: &str,
    trusted_root: &Path,
) -> String {
    let probe: Vec<String> = probe
        .iter()
        .map(|a| Value::String(a.clone()).to_string())
        .collect();
    format!(
        "apiVersion: skerry.dev/v1alpha1
kind: MachineConfig
hostname: {id}
---
apiVersion: skerry.dev/v1alpha1
kind: ServiceConfig
name: app
command: [sleep, \"3600\"]
healthChecks:
  - name: image
    probe:
      exec:
        command: [{probe}]
    interval: 1s
    timeout: 900ms
    failureThreshold: 2
    critical: true
---
apiVersion: skerry.dev/v1alpha1
kind: UpdateConfig
repository: {repository}
trustedRoot: {root}
board: {BOARD}
channel: {CHANNEL}
probation: {probation}s
---
apiVersion: skerry.dev/v1alpha1
kind: FleetConfig
server: {server}
pollInterval: {poll}s
",
        probe = probe.join(", "),
        root = trusted_root.display(),
        probation = PROBATION.as_secs(),
        poll = POLL_INTERVAL.as_secs(),
    )
}
