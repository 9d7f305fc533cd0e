//! A simulated machine for the upgrade subsystem: a machine root with file-backed slots
//! and a real redundant U-Boot environment (hil-tests' fixtures), a signed local
//! repository of releases, and the reboot played as the daemon does it: stop the
//! runtime, the bootloader's power-on, register again with a boot view read afresh.
//!
//! The health checks are played by the test: the running slot's image says whether it
//! is healthy (hil-tests' images), and the test writes the critical check's result as
//! the services subsystem would.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use skerry_api::pb;
use skerry_boot_state::sim::Machine;
use skerry_boot_state::tryboot::TRYBOOT_REBOOT_ARG;
use skerry_boot_state::{BootState, SlotName, SlotStatus};
use skerry_config::kinds::{HumanDuration, UpdateConfig};
use skerry_hil::board::HEALTHY_IMAGE;
use skerry_hil::updates::{SignedReleases, BOARD};
use skerry_hil::{images, Backend};
use skerry_runtime::{Runtime, RuntimeHandle, RuntimeOptions, State};
use skerry_watchdog::clock::TokioClock;
use skerry_watchdog::gate::Vitals;
use skerryd_core::resources::{ActiveUpdate, CheckState, HealthCheckStatus, SINGLETON};
use skerryd_core::{
    BoardDefinition, BootView, Context, EventLog, Layout, Power, PowerRequest, RootPower,
    SlotDefinition, UpgradeOps, VarArea,
};
use skerryd_upgrade::history::{History, HistoryStore};
use skerryd_upgrade::resources::{UpgradePhaseName, UpgradeStatus, STATUS_ID};
use tokio::sync::watch;
use tokio_stream::StreamExt;

/// The critical check every test machine has.
pub const CHECK: &str = "app/ready";
/// A short probation, so tests run in seconds.
pub const PROBATION: Duration = Duration::from_millis(400);

/// The published releases, shared by every test of a binary (publishing chunks 32 MiB).
pub struct Published {
    _dir: tempfile::TempDir,
    pub repo: PathBuf,
    pub root: PathBuf,
}

pub fn published() -> &'static Published {
    static PUBLISHED: OnceLock<Published> = OnceLock::new();
    PUBLISHED.get_or_init(|| {
        let dir = tempfile::tempdir().expect("a scratch directory");
        SignedReleases::publish(dir.path(), &images::factory()).expect("publishing the releases");
        let repo = dir.path().join("repo");
        let root = repo.join("metadata").join("1.root.json");
        assert!(
            root.exists(),
            "the fixture's root metadata at {}",
            root.display()
        );
        Published {
            repo,
            root,
            _dir: dir,
        }
    })
}

/// One simulated machine.
pub struct Sim {
    pub dir: tempfile::TempDir,
    pub layout: Layout,
    /// The boot store with its bootloader (the firmware's one-shot state included).
    pub machine: Box<dyn Machine>,
    pub definition: BoardDefinition,
    pub starts: u32,
}

/// One start of the daemon on it.
pub struct Daemon {
    pub ops: Arc<dyn UpgradeOps>,
    pub context: Context,
    pub handle: RuntimeHandle,
}

pub fn slot(name: &str) -> SlotName {
    SlotName::new(name).unwrap()
}

impl Sim {
    /// A powered-off machine with the factory image (1.0.0) in slot A and a redundant
    /// U-Boot environment.
    pub fn new() -> Sim {
        Sim::with(Backend::Uboot)
    }

    /// The same with `backend`'s boot store.
    pub fn with(backend: Backend) -> Sim {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_owned();
        let layout = Layout::new(&root);
        layout.create_dirs().unwrap();
        // Creates the store's files, a fresh boot state and the slot images.
        drop(backend.board(&root, &images::factory()).unwrap());
        let spec = match backend {
            Backend::Uboot => format!("uboot:{}/uboot.env,offset=0x2000,redundant", root.display()),
            Backend::Grub => format!("grub:{}/grubenv", root.display()),
            Backend::Gpt => format!("gpt:{}/disk.img,A=2,B=3", root.display()),
            Backend::Tryboot => format!("tryboot:{}/boot,A=2,B=3", root.display()),
        };
        let machine = spec
            .parse::<skerry_boot_state::StoreSpec>()
            .unwrap()
            .open_simulated()
            .unwrap();
        let definition = BoardDefinition {
            name: BOARD.into(),
            boot_store: spec,
            slots: ["A", "B"]
                .iter()
                .map(|s| SlotDefinition {
                    name: (*s).into(),
                    image: PathBuf::from(format!("slot-{s}.img")),
                })
                .collect(),
            watchdog: Default::default(),
            verified_root: false,
        };
        std::fs::write(layout.board(), serde_json::to_vec(&definition).unwrap()).unwrap();
        Sim {
            dir,
            layout,
            machine,
            definition,
            starts: 0,
        }
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn boot_state(&self) -> BootState {
        self.machine.store().load().unwrap()
    }

    pub fn status(&self, name: &str) -> SlotStatus {
        self.boot_state().status(&slot(name)).unwrap()
    }

    /// The history as persisted.
    pub fn history(&self) -> History {
        HistoryStore::new(skerry_medium::dir::HostDir::new(self.layout.upgrade()), 1)
            .load()
            .unwrap()
    }

    /// The bootloader's power-on; writes the command line the daemon reads.
    pub fn power_on(&mut self) -> SlotName {
        let started = self.machine.power_on().unwrap();
        std::fs::write(self.layout.cmdline(), format!("skerry.slot={started}\n")).unwrap();
        started
    }

    /// The machine goes down: by the reboot the daemon asked for, or a power cut.
    pub fn power_off(&mut self, request: Option<PowerRequest>) {
        match request {
            Some(PowerRequest::Reboot { tryboot: true }) => {
                self.machine.request_reboot(TRYBOOT_REBOOT_ARG)
            }
            Some(PowerRequest::Reboot { tryboot: false }) => self.machine.request_reboot("0"),
            Some(PowerRequest::Shutdown) | None => self.machine.power_cut(),
        }
    }

    /// Starts the daemon's upgrade subsystem on the slot that runs: opens the boot view
    /// and the /var area as the daemon does, registers, starts the runtime, applies the
    /// update source and plays the critical health check.
    pub fn start(&mut self) -> Daemon {
        self.starts += 1;
        let spec: skerry_boot_state::StoreSpec = self.definition.boot_store.parse().unwrap();
        let at_start = spec.open().unwrap().load().unwrap();
        let booted = skerryd_core::layout::booted_slot(&self.layout)
            .unwrap()
            .map(|s| slot(&s));
        let boot = BootView {
            spec,
            booted,
            at_start,
        };
        let area = VarArea::select(
            &self.layout.var(),
            boot.booted.as_ref().map(SlotName::as_str),
            boot.booted_on_trial(),
        )
        .unwrap();
        let state = State::open_persistent(&area.state).unwrap();
        let (stop, stopping) = watch::channel(false);
        let _ = std::fs::remove_file(self.layout.power_request());
        let power: Arc<dyn Power> = Arc::new(RootPower::new(self.layout.power_request(), stop));
        let context = Context {
            layout: self.layout.clone(),
            board: self.definition.clone(),
            boot,
            area,
            state: state.clone(),
            events: EventLog::new(self.starts),
            vitals: Vitals::new(TokioClock),
            power,
            stopping,
            stop_hooks: Default::default(),
            daemon_version: "test".into(),
        };
        let mut runtime = Runtime::new(state.clone(), RuntimeOptions::default());
        let ops = skerryd_upgrade::register(&mut runtime, &context).unwrap();
        let handle = runtime.start();
        let daemon = Daemon {
            ops,
            context,
            handle,
        };
        daemon.configure(published());
        daemon
    }

    /// Whether the running slot's image is healthy (its first line says so).
    pub fn running_image_healthy(&self, daemon: &Daemon) -> bool {
        let booted = daemon.context.boot.booted.as_ref().unwrap();
        let path = self
            .definition
            .slot_image(&self.layout, booted.as_str())
            .unwrap();
        std::fs::read(path).unwrap().starts_with(HEALTHY_IMAGE)
    }

    /// A new machine powered on with the daemon started on its first slot.
    pub fn started() -> (Sim, Daemon) {
        let mut sim = Sim::new();
        sim.power_on();
        let daemon = sim.start();
        (sim, daemon)
    }

    /// Reports the critical check healthy, upgrades to `version` (which must reach its
    /// trial), then reboots as the daemon asked; returns the slot started.
    pub async fn upgrade_and_reboot(&mut self, daemon: Daemon, version: &str) -> SlotName {
        daemon.health(CheckState::Healthy, "");
        daemon
            .upgrade(version, false)
            .await
            .unwrap_or_else(|status| panic!("the upgrade to {version}: {status}"));
        assert!(
            daemon.reboot_request_after_upgrade().await.is_some(),
            "the upgrade to {version} asked for no reboot"
        );
        self.reboot(daemon).await
    }

    /// Stops the daemon, reboots as it asked (a power cut if it asked for nothing),
    /// then the bootloader's power-on; returns the slot started.
    pub async fn reboot(&mut self, daemon: Daemon) -> SlotName {
        let request = daemon.power_requested();
        daemon.stop().await;
        self.power_off(request);
        self.power_on()
    }
}

impl Daemon {
    /// Applies the update source as the config subsystem would.
    pub fn configure(&self, published: &Published) {
        let update = UpdateConfig {
            repository: format!("file://{}", published.repo.display()),
            trusted_root: published.root.display().to_string(),
            board: BOARD.into(),
            channel: "stable".into(),
            probation: HumanDuration(PROBATION),
        };
        self.context
            .state
            .apply_owned(SINGLETON, Some("config"), ActiveUpdate(update))
            .unwrap();
    }

    /// Writes the critical check's result as the services subsystem would.
    pub fn health(&self, state: CheckState, message: &str) {
        let status = HealthCheckStatus {
            critical: true,
            state,
            message: message.into(),
            last_run: Some(std::time::SystemTime::now()),
            consecutive_failures: u32::from(state == CheckState::Unhealthy),
            since: Some(std::time::SystemTime::now()),
        };
        self.context
            .state
            .apply_owned(CHECK, Some("services"), status)
            .unwrap();
    }

    /// Runs an upgrade to its end: the progress, or the first error.
    pub async fn upgrade(
        &self,
        version: &str,
        force: bool,
    ) -> Result<Vec<pb::UpgradeProgress>, tonic::Status> {
        let mut stream = self
            .ops
            .upgrade(pb::UpgradeRequest {
                release_version: version.into(),
                force,
            })
            .await?;
        let mut progress = Vec::new();
        while let Some(item) = stream.next().await {
            progress.push(item?);
        }
        Ok(progress)
    }

    /// The upgrade status resource.
    pub fn status(&self) -> Option<UpgradeStatus> {
        self.context
            .state
            .get::<UpgradeStatus>(STATUS_ID)
            .ok()
            .map(|r| r.spec)
    }

    /// Waits until the status reaches `phase` (at most 60 s: a broken flow fails the
    /// test with the status it stayed in, not a hang).
    pub async fn wait_for(&self, phase: UpgradePhaseName) -> UpgradeStatus {
        for _ in 0..3000 {
            if let Some(status) = self.status() {
                if status.phase == phase {
                    return status;
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!(
            "the upgrade status never reached {phase:?}: {:?}",
            self.status()
        );
    }

    /// The power request made, if any.
    pub fn power_requested(&self) -> Option<PowerRequest> {
        self.context.power.requested()
    }

    /// The power request an upgrade makes once its stream ended (a moment after the
    /// last answer), waiting for it a few seconds.
    pub async fn reboot_request_after_upgrade(&self) -> Option<PowerRequest> {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            if let Some(request) = self.power_requested() {
                return Some(request);
            }
            if tokio::time::Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    /// The kinds of the events so far.
    pub fn event_kinds(&self) -> Vec<String> {
        self.context
            .events
            .everything()
            .0
            .into_iter()
            .map(|e| e.kind)
            .collect()
    }

    /// Whether an event of `kind` was logged.
    pub fn has_event(&self, kind: &str) -> bool {
        self.event_kinds().iter().any(|k| k == kind)
    }

    /// Asks for an operator rollback with `reason`.
    pub async fn rollback(&self, reason: &str) -> Result<pb::RollbackResponse, tonic::Status> {
        self.ops
            .rollback(pb::RollbackRequest {
                reason: reason.into(),
            })
            .await
    }

    /// Stops the runtime (the daemon's orderly stop).
    pub async fn stop(self) {
        self.handle.shutdown().await;
    }
}
