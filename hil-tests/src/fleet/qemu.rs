//! The QEMU board as a fleet device: the real `skerry-server` on the host, reached by the
//! guest through two slirp forwards, and a disk whose boot environment carries the join
//! URL as a per-device kernel argument (`skerry.join=…`, written by the real `skerryctl
//! boot set-device-args`), so the guest's skerryd enrolls at its first boot and checks
//! in over mutual TLS, shipping its console log to the server (`skerry.logs=…`); its
//! updates come from the server's `/repository`.
//!
//! - `10.0.2.100:8080` in the guest: the server's plaintext port (the repository).
//! - `10.0.2.101:8443` in the guest: the server's TLS port (enrollment, check-ins); the
//!   server certificate names `10.0.2.101` (`--tls-name`).

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _};

use super::FleetServer;
use crate::qemu::files::run_tool;
use crate::rig::qemu::{GuestService, QemuBoard, QemuBoardSpec, QemuReleases, Site};

/// The guest's address of the server's plaintext port.
pub const GUEST_PLAIN: (Ipv4Addr, u16) = (Ipv4Addr::new(10, 0, 2, 100), 8080);
/// The guest's address of the server's TLS port.
pub const GUEST_TLS: (Ipv4Addr, u16) = (Ipv4Addr::new(10, 0, 2, 101), 8443);
/// The server's repository as the guest sees it (the site's factory `UpdateConfig`).
pub const GUEST_REPOSITORY_URL: &str = "http://10.0.2.100:8080/repository";

/// The server and the host ports the guest's two addresses lead to.
#[derive(Debug)]
pub struct QemuFleetServer {
    pub server: FleetServer,
    pub tls_port: u16,
}

impl QemuFleetServer {
    /// Serves `releases`' repository (copied into `DATA/repository` first) with
    /// `skerry-server --tls-listen 127.0.0.1:PORT --tls-name 10.0.2.101`.
    pub fn start(
        bin: &Path,
        data: &Path,
        releases: &QemuReleases,
        poll: Duration,
        log: &Path,
    ) -> anyhow::Result<Self> {
        crate::rig::qemu::releases::copy_tree(releases.repository(), &data.join("repository"))?;
        let tls_port = crate::rig::qemu::free_port()?;
        let more = [
            "--tls-listen".to_owned(),
            format!("127.0.0.1:{tls_port}"),
            "--tls-name".to_owned(),
            GUEST_TLS.0.to_string(),
        ];
        let server = FleetServer::start_with(bin, data, poll, log, &more)?;
        Ok(QemuFleetServer { server, tls_port })
    }

    /// A join token for one device, as the kernel arguments `skerry-server token create
    /// --url` prints: `skerry.join=https://10.0.2.101:8443/?token=…&ca=sha256:…`, and the
    /// log and event sinks in their short form, only the path of each printed URL
    /// (`skerry.logs=/device/v1/logs`: on the join URL's server, with its token and pin),
    /// so all three fit the 512 bytes the boot environment keeps for device arguments.
    pub fn device_arguments(&self, bin: &Path) -> anyhow::Result<String> {
        let url = format!("https://{}:{}", GUEST_TLS.0, GUEST_TLS.1);
        let out = Command::new(bin)
            .arg("--data")
            .arg(self.server.data())
            .args(["token", "create", "--uses", "1", "--url", &url])
            .output()
            .with_context(|| format!("running {} token create", bin.display()))?;
        let text = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            bail!(
                "skerry-server token create failed ({}): {}{}",
                out.status,
                text,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let find = |key: &str| {
            text.lines()
                .find(|l| l.starts_with(key))
                .map(str::to_owned)
                .with_context(|| format!("token create printed no {key} line: {text}"))
        };
        let short = |key: &str| -> anyhow::Result<String> {
            let line = find(key)?;
            let url = &line[key.len()..];
            let path = url
                .strip_prefix("https://")
                .and_then(|rest| rest.find('/').map(|at| &rest[at..]))
                .and_then(|p| p.split_once('?'))
                .map(|(path, _)| path)
                .with_context(|| format!("{key} is not https://HOST:PORT/PATH?…: {line}"))?;
            Ok(format!("{key}{path}"))
        };
        Ok(format!(
            "{} {} {}",
            find("skerry.join=")?,
            short("skerry.logs=")?,
            short("skerry.events=")?
        ))
    }

    /// What the server keeps of `device`'s console log, or with `events` its events
    /// (`skerry-server device logs [--events]`).
    pub fn device_log(&self, bin: &Path, device: &str, events: bool) -> anyhow::Result<String> {
        let out = Command::new(bin)
            .arg("--data")
            .arg(self.server.data())
            .args(["device", "logs", device])
            .args(events.then_some("--events"))
            .output()
            .with_context(|| format!("running {} device logs", bin.display()))?;
        if !out.status.success() {
            bail!(
                "skerry-server device logs {device} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// A powered-off board of `site` whose guest reaches this server, its boot
    /// environment carrying `device_args` (set with `skerryctl` at `skerryctl_bin`).
    pub fn board(
        &self,
        site: &Arc<Site>,
        skerryctl_bin: &Path,
        device_args: &str,
    ) -> anyhow::Result<QemuBoard> {
        let plain_port = self.server.addr().port();
        let board = QemuBoard::new(QemuBoardSpec {
            disk: site.first_disk().disk.clone(),
            pki: Some(site.pki().clone()),
            repository: None,
            releases: None,
            runs_skerryd: true,
            fault_trigger: true,
            services: vec![
                GuestService {
                    guest_address: GUEST_PLAIN.0,
                    guest_port: GUEST_PLAIN.1,
                    host_port: plain_port,
                },
                GuestService {
                    guest_address: GUEST_TLS.0,
                    guest_port: GUEST_TLS.1,
                    host_port: self.tls_port,
                },
            ],
        })?;
        set_device_args(skerryctl_bin, board.disk(), device_args)?;
        Ok(board)
    }
}

/// Sets `SKERRY_DEVICE_ARGS` in the boot environment on `disk`'s ESP: both copies
/// (`grubenv`, `grubenv.b`) are taken off the ESP with mtools, changed by `skerryctl boot
/// set-device-args --store grub:FILE` as on a device, and put back.
pub fn set_device_args(skerryctl: &Path, disk: &Path, args: &str) -> anyhow::Result<()> {
    let board = skerry_boards::shipped(crate::rig::qemu::BOARD_DEFINITION)
        .context("reading the board definition")?
        .context("the QEMU board definition is not shipped")?;
    let esp_start = skerry_boards::layout::place(&board.disk)
        .first()
        .map(|p| p.start)
        .context("the board's disk has no partitions")?;
    let esp = format!("{}@@{esp_start}", disk.display());
    let work = tempfile::tempdir().context("creating a directory for the boot environment")?;
    let local = |name: &str| -> PathBuf { work.path().join(name) };
    let mcopy = |from: &str, to: &str| -> anyhow::Result<()> {
        run_tool(
            Command::new("mcopy")
                .env("MTOOLS_SKIP_CHECK", "1")
                .args(["-o", "-n", "-i", &esp, from, to]),
        )
        .map(|_| ())
        .map_err(anyhow::Error::from)
    };
    for name in ["grubenv", "grubenv.b"] {
        mcopy(
            &format!("::/EFI/BOOT/{name}"),
            &local(name).to_string_lossy(),
        )?;
    }
    let store = format!("grub:{}", local("grubenv").display());
    run_tool(
        Command::new(skerryctl)
            .args(["boot", "set-device-args", "--store", &store])
            .arg(args),
    )
    .context("setting the device arguments with skerryctl")?;
    for name in ["grubenv", "grubenv.b"] {
        mcopy(
            &local(name).to_string_lossy(),
            &format!("::/EFI/BOOT/{name}"),
        )?;
    }
    Ok(())
}
