//! Rollback finds a working `/var`: v2 adds a config key and a persisted type, fails
//! probation, and v1 comes back on its last accepted config and its own state.

mod common;

use common::{slot, Daemon, Sim};
use serde::{Deserialize, Serialize};
use skerry_config::persist::{PersistError, StoredConfig};
use skerry_runtime::{Persistence, ResourceSpec, State};
use skerryd_core::resources::CheckState;
use skerryd_upgrade::history::Step;
use skerryd_upgrade::resources::UpgradePhaseName;

/// The config store's file, as the config subsystem keeps it in its area.
const CONFIG_FILE: &str = "config.json";

const V1_CONFIG: &str = "apiVersion: skerry.dev/v1alpha1\nkind: MachineConfig\nhostname: edge-1\n";

/// A type both releases persist.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Counter {
    n: u32,
}

impl ResourceSpec for Counter {
    const TYPE: &'static str = "Counters.test.skerry.dev";
    const NAMESPACE: &'static str = "test";
    const PERSISTENCE: Persistence = Persistence::Persistent;
}

/// A type only v2 persists.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct V2Only {
    feature: String,
}

impl ResourceSpec for V2Only {
    const TYPE: &'static str = "Features.v2.skerry.dev";
    const NAMESPACE: &'static str = "test";
    const PERSISTENCE: Persistence = Persistence::Persistent;
}

fn stored_v1() -> Vec<u8> {
    let config = skerry_config::decode(V1_CONFIG).unwrap();
    StoredConfig::new(&config, 1).to_bytes().unwrap()
}

/// What v2 writes: a newer store format with a key v1 does not know.
fn stored_v2() -> Vec<u8> {
    serde_json::to_vec_pretty(&serde_json::json!({
        "formatVersion": 2,
        "generation": 2,
        "yaml": format!("{V1_CONFIG}telemetry: on\n"),
        "telemetryEndpoint": "https://collector.example",
    }))
    .unwrap()
}

/// Writes the `boots` counter as the running release would.
fn set_boots(daemon: &Daemon, n: u32) {
    daemon
        .context
        .state
        .apply_owned("boots", Some("test"), Counter { n })
        .unwrap();
}

/// The `boots` counter the running release sees.
fn boots(daemon: &Daemon) -> u32 {
    daemon.context.state.get::<Counter>("boots").unwrap().spec.n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_adds_a_config_key_and_a_persisted_type_fails_probation_and_v1_comes_back_on_its_config()
{
    let (mut sim, daemon) = Sim::started();
    let area = daemon.context.area.clone();
    assert!(area.trial.is_none());
    std::fs::write(area.config.join(CONFIG_FILE), stored_v1()).unwrap();
    set_boots(&daemon, 1);
    assert_eq!(sim.upgrade_and_reboot(daemon, "1.2.0").await, slot("B"));

    // v2 on trial: it works in the overlay, seeded from v1's area.
    let daemon = sim.start();
    let trial = daemon.context.area.clone();
    assert_eq!(trial.trial.as_deref(), Some("B"));
    assert_ne!(trial.config, area.config);
    assert_eq!(
        std::fs::read(trial.config.join(CONFIG_FILE)).unwrap(),
        stored_v1()
    );
    assert_eq!(boots(&daemon), 1);
    std::fs::write(trial.config.join(CONFIG_FILE), stored_v2()).unwrap();
    set_boots(&daemon, 2);
    daemon
        .context
        .state
        .apply_owned(
            "telemetry",
            Some("test"),
            V2Only {
                feature: "telemetry".into(),
            },
        )
        .unwrap();
    // Had v2 written the main area, v1 could not read its config.
    match StoredConfig::from_bytes(&stored_v2()) {
        Err(PersistError::NewerFormat { found: 2, .. }) => {}
        other => panic!("v1 reads v2's config store as {other:?}"),
    }
    daemon.health(CheckState::Unhealthy, "telemetry endpoint unreachable");
    daemon.wait_for(UpgradePhaseName::RollingBack).await;
    assert_eq!(sim.reboot(daemon).await, slot("A"));

    // v1 again: the overlay is gone, its own config and state are as it left them.
    let daemon = sim.start();
    let back = daemon.context.area.clone();
    assert!(back.trial.is_none());
    assert_eq!(back.config, area.config);
    assert!(!sim.layout.var().join("trial").exists());
    let (stored, config) =
        StoredConfig::from_bytes(&std::fs::read(back.config.join(CONFIG_FILE)).unwrap())
            .expect("v1 reads its last accepted config");
    assert_eq!(stored.generation, 1);
    assert_eq!(
        config.to_yaml(),
        skerry_config::decode(V1_CONFIG).unwrap().to_yaml()
    );
    assert_eq!(boots(&daemon), 1);
    assert!(daemon.context.state.get::<V2Only>("telemetry").is_err());
    assert!(
        !daemon
            .context
            .state
            .kinds()
            .iter()
            .any(|(_, type_name, _)| type_name == V2Only::TYPE),
        "v1's state holds no v2 type"
    );
    // And it knows why: the history, in the main area, reads.
    let h = sim.history();
    let last = h.entries.last().unwrap();
    assert_eq!(last.step, Step::RolledBack);
    assert!(
        last.reason.contains("telemetry endpoint unreachable"),
        "{}",
        last.reason
    );
    daemon.health(CheckState::Healthy, "");
    assert_ne!(daemon.status().unwrap().phase, UpgradePhaseName::Failed);
    daemon.stop().await;
    // The state directory opens on its own too (nothing of v2 in it).
    let state = State::open_persistent(&back.state).unwrap();
    assert_eq!(state.get::<Counter>("boots").unwrap().spec.n, 1);
}
