//! A fleet on one machine: the real `skerry-server` on a temporary data directory, and
//! simulated devices, each a [`DaemonBoard`](crate::DaemonBoard) running the real
//! `skerryd` whose fleet client checks in with that server, takes its offers and
//! reboots through its own power requests. The end-to-end rollout test
//! (`tests/fleet_rollout.rs`) and the local demo drive it.
//!
//! # Layout
//! - [`server`]: [`FleetServer`], the server process and its operator API (`/api/v1`).
//! - [`releases`]: the signed repository the server hosts (1.0.0 is the factory image,
//!   2.0.0 the release rolled out).
//! - [`story`]: the rollout story (two waves, one rollback, the automatic pause).
//! - [`device`]: [`FleetDevice`], a board kept powered (rebooted when its daemon asks)
//!   with the machine config that points it at the server, and what it says about itself.
//! - [`qemu`]: the QEMU board as a fleet device, enrolled by the join URL on its kernel
//!   command line (`tests/fleet_rollout_qemu.rs`).

pub mod device;
pub mod qemu;
pub mod releases;
pub mod server;
pub mod story;

use std::path::PathBuf;

use anyhow::{bail, Context as _};

pub use device::{DeviceRole, FleetDevice};
pub use releases::FleetReleases;
pub use server::FleetServer;

/// The binaries a fleet runs: `skerry-server` and `skerryd`.
#[derive(Debug, Clone)]
pub struct FleetBinaries {
    pub server: PathBuf,
    pub skerryd: PathBuf,
}

impl FleetBinaries {
    /// `$SKERRY_SERVER_BIN` and `$SKERRYD_BIN` when set, else the binaries beside the
    /// running executable (a test's `target/debug/deps/..` or the demo's own folder),
    /// where `cargo test --workspace` and `cargo build -p skerry-server -p skerryd`
    /// put them.
    pub fn locate() -> anyhow::Result<Self> {
        let exe = std::env::current_exe().context("finding the running executable")?;
        let dirs: Vec<PathBuf> = exe.ancestors().skip(1).take(2).map(PathBuf::from).collect();
        let find = |var: &str, name: &str| -> PathBuf {
            if let Some(path) = std::env::var_os(var) {
                return path.into();
            }
            dirs.iter()
                .map(|d| d.join(name))
                .find(|p| p.is_file())
                .unwrap_or_else(|| dirs[0].join(name))
        };
        FleetBinaries {
            server: find("SKERRY_SERVER_BIN", "skerry-server"),
            skerryd: find("SKERRYD_BIN", "skerryd"),
        }
        .checked()
    }

    fn checked(self) -> anyhow::Result<Self> {
        for (what, path) in [("skerry-server", &self.server), ("skerryd", &self.skerryd)] {
            if !path.is_file() {
                bail!(
                    "{what} binary {} not found: build it with `cargo build -p {what}` (cargo test --workspace does) or set {}",
                    path.display(),
                    if what == "skerryd" {
                        "SKERRYD_BIN"
                    } else {
                        "SKERRY_SERVER_BIN"
                    }
                );
            }
        }
        Ok(self)
    }
}
