//! A machine root in a temporary directory and the config subsystem started on it with
//! a real runtime, an in-memory state (the `Active*` resources are rebuilt at every
//! start) and a power fake that records requests.

#![allow(dead_code, reason = "each test file uses a part of the harness")]

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use skerry_api::pb;
use skerry_boot_state::{BootState, SlotName, StoreSpec};
use skerry_runtime::{Runtime, RuntimeHandle, RuntimeOptions, State};
use skerry_watchdog::clock::TokioClock;
use skerry_watchdog::gate::Vitals;
use skerryd_core::resources::{ActiveMachine, SINGLETON};
use skerryd_core::{
    BoardDefinition, BootView, ConfigOps, Context, Event, EventLog, FormatFloor, Layout, Power,
    PowerRequest, SlotDefinition, StopHooks, VarArea,
};
use tokio::sync::watch;

/// Records every power request.
#[derive(Debug, Default)]
pub struct FakePower {
    requests: Mutex<Vec<PowerRequest>>,
}

impl FakePower {
    /// Every request so far.
    pub fn requests(&self) -> Vec<PowerRequest> {
        self.requests.lock().unwrap().clone()
    }
}

impl Power for FakePower {
    fn request(&self, request: PowerRequest) {
        self.requests.lock().unwrap().push(request);
    }

    fn requested(&self) -> Option<PowerRequest> {
        self.requests.lock().unwrap().first().copied()
    }
}

/// One start of the subsystem.
pub struct Daemon {
    pub state: State,
    pub ops: Arc<dyn ConfigOps>,
    pub events: EventLog,
    pub power: Arc<FakePower>,
    handle: RuntimeHandle,
    _stop: watch::Sender<bool>,
}

/// The store's directory under `root`.
pub fn config_dir(root: &Path) -> PathBuf {
    Layout::new(root).config()
}

/// The context a daemon on `root` gives the subsystem.
pub fn context(root: &Path, state: State, power: Arc<FakePower>) -> (Context, watch::Sender<bool>) {
    let layout = Layout::new(root);
    std::fs::create_dir_all(layout.config()).unwrap();
    std::fs::create_dir_all(layout.run()).unwrap();
    let slots = [SlotName::new("A").unwrap(), SlotName::new("B").unwrap()];
    let (stop, stopping) = watch::channel(false);
    let context = Context {
        board: BoardDefinition {
            name: "test".into(),
            boot_store: "grub:boot/grubenv".into(),
            slots: ["A", "B"]
                .map(|name| SlotDefinition {
                    name: name.into(),
                    image: format!("slots/{name}.img").into(),
                })
                .to_vec(),
            watchdog: Default::default(),
            verified_root: false,
        },
        boot: BootView {
            spec: StoreSpec::Grub {
                path: root.join("boot/grubenv"),
            },
            booted: Some(slots[0].clone()),
            at_start: BootState::new(&slots, 3).unwrap(),
        },
        area: VarArea {
            config: layout.config(),
            state: layout.state(),
            trial: None,
            floor: FormatFloor::default(),
        },
        layout,
        state,
        events: EventLog::new(1),
        vitals: Vitals::new(TokioClock),
        power,
        stopping,
        stop_hooks: StopHooks::default(),
        daemon_version: "test".into(),
    };
    (context, stop)
}

/// Starts the subsystem on `root`.
pub fn try_start(root: &Path) -> anyhow::Result<Daemon> {
    try_start_with(root, |_| {})
}

/// Starts the subsystem on `root` with a context changed by `adjust`.
pub fn try_start_with(root: &Path, adjust: impl FnOnce(&mut Context)) -> anyhow::Result<Daemon> {
    let state = State::in_memory();
    let power = Arc::new(FakePower::default());
    let (mut context, stop) = context(root, state.clone(), power.clone());
    adjust(&mut context);
    let mut runtime = Runtime::new(state.clone(), RuntimeOptions::default());
    let ops = skerryd_config::register(&mut runtime, &context)?;
    let handle = runtime.start();
    Ok(Daemon {
        state,
        ops,
        events: context.events.clone(),
        power,
        handle,
        _stop: stop,
    })
}

/// Starts the subsystem on `root` and waits for its first publication.
pub async fn start(root: &Path) -> Daemon {
    let daemon = try_start(root).expect("the config subsystem starts");
    daemon
        .eventually("the first status", |d| d.status().is_some())
        .await;
    daemon
}

/// A machine root in a new temporary directory and the subsystem started on it.
pub async fn fresh() -> (tempfile::TempDir, Daemon) {
    let dir = tempfile::tempdir().unwrap();
    let daemon = start(dir.path()).await;
    (dir, daemon)
}

impl Daemon {
    /// Checks that the try of `generation` (the last one given) is over: confirming it
    /// is refused and the next apply gets the generation after it.
    pub async fn assert_try_closed(&self, generation: u64) {
        let late = self.confirm(generation).await.unwrap_err();
        assert_eq!(late.code(), tonic::Code::FailedPrecondition, "{late}");
        let next = self.applied("pump-9", &[], pb::ApplyMode::NoReboot).await;
        assert_eq!(next.generation, generation + 1);
    }

    /// Stops the controllers (a daemon that stops; the store stays).
    pub async fn stop(self) {
        self.handle.shutdown().await;
    }

    /// The status resource.
    pub fn status(&self) -> Option<skerryd_config::ConfigStatus> {
        self.state
            .get::<skerryd_config::ConfigStatus>(skerryd_config::STORE_ID)
            .ok()
            .map(|r| r.spec)
    }

    /// The generation in effect, as published.
    pub fn generation(&self) -> u64 {
        self.status().expect("a status").generation
    }

    /// The published hostname, if a MachineConfig is in effect.
    pub fn hostname(&self) -> Option<String> {
        self.state
            .get::<ActiveMachine>(SINGLETON)
            .ok()
            .map(|r| r.spec.0.hostname.clone())
    }

    /// The kinds of the events so far.
    pub fn event_kinds(&self) -> Vec<String> {
        self.events
            .everything()
            .0
            .into_iter()
            .map(|e| e.kind)
            .collect()
    }

    /// The events of `kind` so far.
    pub fn events_of(&self, kind: &str) -> Vec<Event> {
        self.events
            .everything()
            .0
            .into_iter()
            .filter(|e| e.kind == kind)
            .collect()
    }

    /// Waits (at most 30 s of the runtime's clock) until `done` holds.
    pub async fn eventually(&self, what: &str, done: impl Fn(&Daemon) -> bool) {
        for _ in 0..3000 {
            if done(self) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("timed out waiting for {what}");
    }

    /// Applies `yaml` in `mode`.
    pub async fn apply(
        &self,
        yaml: &str,
        mode: pb::ApplyMode,
    ) -> Result<pb::ApplyConfigurationResponse, tonic::Status> {
        self.ops.apply(request(yaml, mode)).await
    }

    /// Applies [`config`]`(hostname, services)` in `mode`, which must succeed.
    pub async fn applied(
        &self,
        hostname: &str,
        services: &[&str],
        mode: pb::ApplyMode,
    ) -> pb::ApplyConfigurationResponse {
        self.apply(&config(hostname, services), mode)
            .await
            .unwrap_or_else(|status| panic!("applying {hostname} in {mode:?}: {status}"))
    }

    /// Applies `yaml` on try with `timeout`.
    pub async fn try_apply(
        &self,
        yaml: &str,
        timeout: Duration,
    ) -> Result<pb::ApplyConfigurationResponse, tonic::Status> {
        self.ops.apply(try_request(yaml, timeout)).await
    }

    /// A dry run of `yaml` in `mode`, which must be answered.
    pub async fn dry_run(&self, yaml: &str, mode: pb::ApplyMode) -> pb::ApplyConfigurationResponse {
        self.ops
            .apply(pb::ApplyConfigurationRequest {
                dry_run: true,
                ..request(yaml, mode)
            })
            .await
            .unwrap_or_else(|status| panic!("a dry run in {mode:?}: {status}"))
    }

    /// Confirms the try of `generation`.
    pub async fn confirm(&self, generation: u64) -> Result<(), tonic::Status> {
        self.ops
            .confirm(pb::ConfirmConfigurationRequest { generation })
            .await
    }
}

/// An apply request.
pub fn request(yaml: &str, mode: pb::ApplyMode) -> pb::ApplyConfigurationRequest {
    pb::ApplyConfigurationRequest {
        configuration: yaml.as_bytes().to_vec(),
        mode: mode as i32,
        dry_run: false,
        try_timeout: None,
    }
}

/// A try request with `timeout`.
pub fn try_request(yaml: &str, timeout: Duration) -> pb::ApplyConfigurationRequest {
    pb::ApplyConfigurationRequest {
        try_timeout: Some(prost_types::Duration {
            seconds: i64::try_from(timeout.as_secs()).unwrap(),
            nanos: i32::try_from(timeout.subsec_nanos()).unwrap(),
        }),
        ..request(yaml, pb::ApplyMode::Try)
    }
}

/// A config with a MachineConfig of `hostname` and the given services.
pub fn config(hostname: &str, services: &[&str]) -> String {
    let mut text =
        format!("apiVersion: skerry.dev/v1alpha1\nkind: MachineConfig\nhostname: {hostname}\n");
    for service in services {
        text.push_str(&format!(
            "---\napiVersion: skerry.dev/v1alpha1\nkind: ServiceConfig\nname: {service}\ncommand: [/bin/{service}]\n"
        ));
    }
    text
}

/// A config whose machine identity (read at boot) differs from [`config`]'s.
pub fn config_with_identity(hostname: &str, machine_id: &str) -> String {
    format!(
        "apiVersion: skerry.dev/v1alpha1\nkind: MachineConfig\nhostname: {hostname}\nidentity:\n  machineId: {machine_id}\n"
    )
}

/// Every file of the store and its bytes.
pub fn store_bytes(root: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(config_dir(root))
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

/// Simulates a reboot's loss of `run/`.
pub fn lose_run(root: &Path) {
    let run = Layout::new(root).run();
    std::fs::remove_dir_all(&run).unwrap();
    std::fs::create_dir_all(&run).unwrap();
}
