//! A services subsystem on an in-memory state with a real supervisor: configs go in
//! as `ActiveService` resources (as the config subsystem writes them), statuses come
//! out as resources, events and API answers.
#![allow(dead_code)]

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use skerry_boot_state::{BootState, SlotName, StoreSpec};
use skerry_config::kinds::ServiceConfig;
use skerry_runtime::{Runtime, RuntimeHandle, RuntimeOptions, Selector, State};
use skerry_watchdog::clock::MonotonicClock;
use skerry_watchdog::gate::Vitals;
use skerryd_core::resources::{ActiveService, HealthCheckStatus};
use skerryd_core::{
    BoardDefinition, BootView, Context, Event, EventLog, Layout, RootPower, ServiceOps, StopHooks,
    VarArea,
};
use skerryd_services::ServiceStatus;
use tokio::sync::watch;

/// How long a test waits for something before it fails.
pub const PATIENCE: Duration = Duration::from_secs(20);

pub struct Harness {
    pub dir: tempfile::TempDir,
    pub state: State,
    pub events: EventLog,
    pub vitals: Vitals,
    pub hooks: StopHooks,
    pub ops: Arc<dyn ServiceOps>,
    pub runtime: Option<RuntimeHandle>,
    _stop: watch::Sender<bool>,
}

impl Harness {
    pub fn new() -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let state = State::in_memory();
        let events = EventLog::new(1);
        let vitals = Vitals::new(MonotonicClock);
        let (stop, stopping) = watch::channel(false);
        let slots = [SlotName::new("A").unwrap(), SlotName::new("B").unwrap()];
        let context = Context {
            layout: Layout::new(dir.path()),
            board: BoardDefinition {
                name: "test".into(),
                boot_store: "grub:boot/grubenv".into(),
                slots: Vec::new(),
                watchdog: Default::default(),
                verified_root: false,
            },
            boot: BootView {
                spec: StoreSpec::Grub {
                    path: dir.path().join("grubenv"),
                },
                booted: None,
                at_start: BootState::new(&slots, 3).unwrap(),
            },
            area: VarArea::select(&dir.path().join("var"), None, false).unwrap(),
            state: state.clone(),
            events: events.clone(),
            vitals: vitals.clone(),
            power: Arc::new(RootPower::new(dir.path().join("power"), stop.clone())),
            stopping,
            stop_hooks: StopHooks::default(),
            daemon_version: "test".into(),
        };
        let mut runtime = Runtime::new(state.clone(), RuntimeOptions::default());
        let ops = skerryd_services::register(&mut runtime, &context).unwrap();
        Harness {
            dir,
            state,
            events,
            vitals,
            hooks: context.stop_hooks.clone(),
            ops,
            runtime: Some(runtime.start()),
            _stop: stop,
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Makes `configs` the services in effect, as the config subsystem would.
    pub fn set_services(&self, configs: &[ServiceConfig]) {
        for old in self.state.list::<ActiveService>(&Selector::all()).unwrap() {
            let id = old.metadata.id.to_string();
            if !configs.iter().any(|c| c.name == id) {
                self.state.teardown::<ActiveService>(&id, None).unwrap();
                self.state.destroy::<ActiveService>(&id, None).unwrap();
            }
        }
        for config in configs {
            self.state
                .apply_owned(&config.name, None, ActiveService(config.clone()))
                .unwrap();
        }
    }

    pub fn status(&self, name: &str) -> Option<ServiceStatus> {
        self.state
            .get::<ServiceStatus>(name)
            .ok()
            .map(|r| r.spec.clone())
    }

    pub fn check(&self, id: &str) -> Option<HealthCheckStatus> {
        self.state
            .get::<HealthCheckStatus>(id)
            .ok()
            .map(|r| r.spec.clone())
    }

    /// Waits until `name` runs and gives its pid.
    pub async fn running_pid(&self, name: &str) -> u32 {
        eventually(&format!("{name} runs"), || {
            self.status(name)
                .filter(|s| s.state == skerryd_services::RunState::Running)
                .and_then(|s| s.pid)
        })
        .await
    }

    pub fn events_of(&self, kind: &str) -> Vec<Event> {
        self.events
            .everything()
            .0
            .into_iter()
            .filter(|e| e.kind == kind)
            .collect()
    }

    /// Stops the services (the stop hook) and the runtime.
    pub async fn stop(mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown().await;
        }
        self.hooks.run(PATIENCE).await;
    }
}

/// Polls `probe` until it gives a value; fails the test after [`PATIENCE`].
pub async fn eventually<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "gave up waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Awaits `future` for at most [`PATIENCE`].
pub async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(PATIENCE, future)
        .await
        .unwrap_or_else(|_| panic!("gave up waiting for {what}"))
}

/// A service config from JSON (the config's own field names).
pub fn service(json: serde_json::Value) -> ServiceConfig {
    serde_json::from_value(json).expect("a valid ServiceConfig")
}

/// Whether a process with this pid exists (a zombie counts as gone).
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// Pids of live processes in process group `pgid`.
pub fn group_members(pgid: u32) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // state ppid pgrp ...
        if fields.len() > 2 && fields[2] == pgid.to_string() && fields[0] != "Z" {
            found.push(pid);
        }
    }
    found
}

/// A 127.0.0.1 port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Fails naming the tool when a test's program is missing.
pub fn need(program: &str) {
    let found = std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|dir| Path::new(&dir).join(program).is_file())
    });
    assert!(
        found,
        "this test needs `{program}` on PATH (install it: scripts/install-deps)"
    );
}
