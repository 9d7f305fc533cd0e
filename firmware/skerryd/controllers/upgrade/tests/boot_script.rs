//! The boot script a release carries (`/boot/esp/grub.cfg` and `boot_script_version` in
//! `/etc/skerry/image.json`) reaches the ESP only once its slot is committed: not during
//! the trial, right after probation commits it, and at a start on a committed slot (the
//! update a power cut interrupted). An older one (a rollback) keeps the newer; a broken
//! `image.json` is an event, not a daemon that stops; a store that is not GRUB's is
//! left alone. The machine's GRUB environment block stands for the ESP (the scripts go
//! beside it).

mod common;

use std::path::Path;

use common::{slot, Sim};
use skerry_boot_state::grub::boot_script::{
    PRIMARY_SCRIPT, SCRIPT_VAR, SECOND_SCRIPT, VERSION_VAR,
};
use skerry_boot_state::grub::GrubEnvStore;
use skerry_boot_state::{FileMedium, SlotStatus};
use skerry_hil::Backend;
use skerryd_core::resources::CheckState;
use skerryd_upgrade::boot_script::{IMAGE_JSON, SLOT_SCRIPT};
use skerryd_upgrade::resources::UpgradePhaseName;

/// Lays the release's boot script into the running slot's tree (the machine root).
fn carry(root: &Path, script: &str, version: &str) {
    for (rel, bytes) in [
        (SLOT_SCRIPT, script.to_owned()),
        (
            IMAGE_JSON,
            format!("{{\"version\":\"1.1.0\",\"boot_script_version\":{version}}}"),
        ),
    ] {
        let path = root.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
}

/// The script variables on the ESP: (name, version).
fn esp_vars(sim: &Sim) -> (Option<String>, Option<String>) {
    let vars = GrubEnvStore::new(FileMedium::open(sim.root().join("grubenv")).unwrap())
        .variables()
        .unwrap();
    let get = |n: &str| vars.get(n).map(|v| v.unwrap().to_owned());
    (get(SCRIPT_VAR), get(VERSION_VAR))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_committed_release_s_boot_script_goes_on_the_esp_and_not_before() {
    let mut sim = Sim::with(Backend::Grub);
    assert_eq!(sim.power_on(), slot("A"));
    let daemon = sim.start();
    assert!(!daemon.has_event("upgrade.boot_script"));
    assert_eq!(sim.upgrade_and_reboot(daemon, "1.1.0").await, slot("B"));

    // Slot B (the release) carries boot script version 1.
    let script = "# boot script v1\nset timeout=0\n";
    carry(sim.root(), script, "1");
    let daemon = sim.start();
    assert!(daemon.context.area.trial.is_some());
    assert!(
        !sim.root().join(SECOND_SCRIPT).exists(),
        "no boot script is written during the trial"
    );
    assert_eq!(esp_vars(&sim), (None, None));
    daemon.health(CheckState::Healthy, "");
    daemon.wait_for(UpgradePhaseName::Committed).await;
    assert_eq!(sim.status("B"), SlotStatus::Good);
    assert_eq!(
        std::fs::read_to_string(sim.root().join(SECOND_SCRIPT)).unwrap(),
        script
    );
    assert_eq!(
        esp_vars(&sim),
        (Some(SECOND_SCRIPT.into()), Some("1".into()))
    );
    assert!(
        daemon.has_event("upgrade.boot_script"),
        "{:?}",
        daemon.event_kinds()
    );
    // The boot state beside the script variables is the committed one.
    assert_eq!(sim.boot_state().next_boot(), Some(&slot("B")));

    // The next start: GRUB's save kept the variables; nothing to write again.
    assert_eq!(sim.reboot(daemon).await, slot("B"));
    let daemon = sim.start();
    assert!(!daemon.has_event("upgrade.boot_script"));
    assert!(!daemon.has_event("upgrade.boot_script_failed"));
    assert_eq!(
        esp_vars(&sim),
        (Some(SECOND_SCRIPT.into()), Some("1".into()))
    );
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_on_a_committed_slot_finishes_the_update_and_keeps_a_newer_script() {
    let mut sim = Sim::with(Backend::Grub);
    sim.power_on();
    // As after a power cut between the commit and the boot script's update.
    carry(sim.root(), "# v2\n", "2");
    let daemon = sim.start();
    assert!(
        daemon.has_event("upgrade.boot_script"),
        "{:?}",
        daemon.event_kinds()
    );
    assert_eq!(
        esp_vars(&sim),
        (Some(SECOND_SCRIPT.into()), Some("2".into()))
    );
    daemon.stop().await;

    // A rollback to a release whose script is older: the ESP keeps the newer one.
    carry(sim.root(), "# v1\n", "1");
    sim.power_off(None);
    sim.power_on();
    let daemon = sim.start();
    assert!(!daemon.has_event("upgrade.boot_script"));
    assert!(!daemon.has_event("upgrade.boot_script_failed"));
    assert_eq!(
        esp_vars(&sim),
        (Some(SECOND_SCRIPT.into()), Some("2".into()))
    );
    assert!(!sim.root().join(PRIMARY_SCRIPT).exists());
    daemon.stop().await;

    // A broken image.json is an event; the daemon runs on.
    std::fs::write(
        sim.root().join(IMAGE_JSON),
        b"{\"boot_script_version\":\"x\"}",
    )
    .unwrap();
    sim.power_off(None);
    sim.power_on();
    let daemon = sim.start();
    assert!(
        daemon.has_event("upgrade.boot_script_failed"),
        "{:?}",
        daemon.event_kinds()
    );
    assert_eq!(daemon.status().unwrap().phase, UpgradePhaseName::Idle);
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_is_not_grub_s_has_no_boot_script() {
    let mut sim = Sim::new();
    sim.power_on();
    carry(sim.root(), "# v1\n", "1");
    let daemon = sim.start();
    assert!(!daemon.has_event("upgrade.boot_script"));
    assert!(!daemon.has_event("upgrade.boot_script_failed"));
    assert!(!sim.root().join(SECOND_SCRIPT).exists());
    daemon.stop().await;
}
