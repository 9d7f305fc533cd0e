//! A machine root in a temporary directory, a context over it, and a real runtime with
//! this subsystem's controllers on an in-memory state; the test writes the config
//! resources (it plays the config subsystem).

#![allow(dead_code)]

pub mod netns;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use skerry_boot_state::{BootState, SlotName, StoreSpec};
use skerry_runtime::{Resource, ResourceSpec, Runtime, RuntimeHandle, RuntimeOptions, State};
use skerryd_core::layout::{BoardDefinition, BoardWatchdog, Layout, SlotDefinition};
use skerryd_core::{BootView, Context, EventLog, FormatFloor, RootPower, StopHooks, VarArea};
use skerryd_network::Backends;
use tokio::sync::watch;

/// How long a test waits for the controllers to catch up before it fails.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// A context over the machine root `root`, with a fresh in-memory state.
pub fn context(root: &Path) -> Context {
    let layout = Layout::new(root);
    layout.create_dirs().expect("creating the machine root");
    let slots: Vec<SlotName> = ["A", "B"].iter().map(|s| s.parse().unwrap()).collect();
    let board = BoardDefinition {
        name: "test-board".into(),
        boot_store: "uboot:boot/uboot.env,redundant".into(),
        slots: ["A", "B"]
            .iter()
            .map(|s| SlotDefinition {
                name: (*s).into(),
                image: format!("slots/{s}.img").into(),
            })
            .collect(),
        watchdog: BoardWatchdog::None,
        verified_root: false,
    };
    let boot = BootView {
        spec: StoreSpec::Grub {
            path: root.join("boot/grubenv"),
        },
        booted: Some(slots[0].clone()),
        at_start: BootState::new(&slots, 3).expect("a boot state"),
    };
    let area = VarArea {
        config: layout.config(),
        state: layout.state(),
        trial: None,
        floor: FormatFloor::default(),
    };
    let (stop, stopping) = watch::channel(false);
    Context {
        layout: layout.clone(),
        board,
        boot,
        area,
        state: State::in_memory(),
        events: EventLog::new(1),
        vitals: skerry_watchdog::gate::Vitals::new(skerry_watchdog::clock::TokioClock),
        power: Arc::new(RootPower::new(layout.power_request(), stop)),
        stopping,
        stop_hooks: StopHooks::default(),
        daemon_version: "test".into(),
    }
}

/// Registers the subsystem with `backends` and starts the runtime.
pub fn start(context: &Context, backends: Backends) -> RuntimeHandle {
    let mut runtime = Runtime::new(context.state.clone(), RuntimeOptions::default());
    skerryd_network::register_with(&mut runtime, context, backends).expect("register");
    runtime.start()
}

/// Stops the runtime and runs the stop hooks, as the daemon does.
pub async fn stop(context: &Context, handle: RuntimeHandle) {
    handle.shutdown().await;
    context.stop_hooks.run(Duration::from_secs(5)).await;
}

/// Writes a config resource as the config subsystem would.
pub fn put<T: ResourceSpec>(state: &State, id: &str, spec: T) {
    match state.get::<T>(id) {
        Ok(mut existing) => {
            existing.spec = spec;
            state.update(existing).expect("update config");
        }
        Err(_) => {
            state
                .create(Resource::new(id, spec))
                .expect("create config");
        }
    }
}

/// Polls `check` until it gives `Some`, failing with `what` after [`PATIENCE`].
pub async fn wait_for<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(value) = check() {
            return value;
        }
        if Instant::now() > deadline {
            panic!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A config document from JSON (the YAML decoder's result, without the YAML).
pub fn from_json<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> T {
    serde_json::from_value(value).expect("a config document")
}
