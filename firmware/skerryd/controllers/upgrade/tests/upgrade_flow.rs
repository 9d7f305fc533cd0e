//! The upgrade flow on a simulated board: v1 → v2 and commit after probation; a v2
//! whose critical check fails is rolled back with the reason recorded and not
//! re-installed unless forced; no upgrade during probation; a trial the bootloader gave
//! up is recorded as rolled back.

mod common;

use common::{slot, Sim, CHECK};
use skerry_api::pb;
use skerry_boot_state::SlotStatus;
use skerryd_core::resources::CheckState;
use skerryd_core::PowerRequest;
use skerryd_upgrade::history::{Decider, Stage, Step};
use skerryd_upgrade::resources::UpgradePhaseName;
use tonic::Code;

fn phases(progress: &[pb::UpgradeProgress]) -> Vec<pb::UpgradePhase> {
    let mut out: Vec<pb::UpgradePhase> = Vec::new();
    for p in progress {
        let phase = pb::UpgradePhase::try_from(p.phase).unwrap();
        if out.last() != Some(&phase) {
            out.push(phase);
        }
    }
    out
}

/// A strict reader of history version 1, as a release that knows only version 1
/// reads it: unknown fields are refused.
#[allow(dead_code)]
mod v1 {
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Envelope {
        pub format: String,
        pub version: u32,
        pub body: History,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct History {
        pub entries: Vec<Entry>,
        pub pending: Option<Pending>,
        pub rolled_back: Vec<String>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Entry {
        pub seq: u64,
        pub time: u64,
        pub step: String,
        pub release: String,
        pub slot: String,
        pub reason: String,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Pending {
        pub slot: String,
        pub release: String,
        pub from: String,
        pub stage: String,
        pub failure: Option<String>,
    }
}

fn history_file(sim: &Sim) -> serde_json::Value {
    let bytes = std::fs::read(sim.layout.upgrade().join("history.json")).unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v1_to_v2_installs_into_the_inactive_slot_and_commits_after_probation() {
    let mut sim = Sim::new();
    assert_eq!(sim.power_on(), slot("A"));
    let daemon = sim.start();
    daemon.health(CheckState::Healthy, "");
    let progress = daemon.upgrade("1.1.0", false).await.expect("the upgrade");
    let seen = phases(&progress);
    for phase in [
        pb::UpgradePhase::RefreshingMetadata,
        pb::UpgradePhase::Downloading,
        pb::UpgradePhase::Writing,
        pb::UpgradePhase::Verifying,
        pb::UpgradePhase::TrialReady,
    ] {
        assert!(seen.contains(&phase), "{phase:?} missing from {seen:?}");
    }
    assert_eq!(seen.last(), Some(&pb::UpgradePhase::TrialReady));
    let writing = progress
        .iter()
        .filter(|p| p.phase == pb::UpgradePhase::Writing as i32)
        .map(|p| p.total_bytes)
        .max()
        .unwrap();
    assert_eq!(writing, skerry_hil::images::IMAGE_SIZE as u64);
    assert!(progress.iter().all(|p| p.target_slot == "B"));
    assert_eq!(progress.last().unwrap().release_version, "1.1.0");
    assert_eq!(
        daemon.reboot_request_after_upgrade().await,
        Some(PowerRequest::Reboot { tryboot: false })
    );
    assert!(matches!(sim.status("B"), SlotStatus::Trial { .. }));
    let h = sim.history();
    let pending = h.pending.clone().expect("the trial is pending");
    assert_eq!((pending.slot.as_str(), pending.stage), ("B", Stage::Trial));
    assert!(daemon.has_event("upgrade.phase"));
    // As the committed v1 release recorded it: it writes history version 1.
    std::fs::write(
        sim.layout.var().join("formats.json"),
        br#"{"format":"skerry.format-floor","version":1,"body":{"formats":{"skerry.upgrade-history":1}}}"#,
    )
    .unwrap();

    assert_eq!(sim.reboot(daemon).await, slot("B"));
    let daemon = sim.start();
    assert!(daemon.context.area.trial.is_some());
    assert!(sim.running_image_healthy(&daemon));
    daemon.health(CheckState::Healthy, "");
    let status = daemon.wait_for(UpgradePhaseName::Committed).await;
    assert!(status.message.contains(CHECK), "{}", status.message);
    assert_eq!(sim.status("B"), SlotStatus::Good);
    assert_eq!(sim.boot_state().next_boot(), Some(&slot("B")));
    let h = sim.history();
    let last = h.entries.last().unwrap();
    assert_eq!(
        (last.step, last.release.as_str()),
        (Step::Committed, "1.1.0")
    );
    assert!(h.pending.is_none());
    assert!(daemon.has_event("upgrade.committed"));
    // Written during the trial at the committed release's version, readable by it.
    let file = history_file(&sim);
    assert_eq!(file["version"], 1, "{file}");
    let old: v1::Envelope =
        serde_json::from_value(file).expect("a v1 reader reads the trial's history");
    assert_eq!(old.format, "skerry.upgrade-history");
    assert_eq!(old.body.entries.last().unwrap().step, "committed");
    // The commit recorded this build's formats as the floor.
    let floor = std::fs::read_to_string(sim.layout.var().join("formats.json")).unwrap();
    assert!(floor.contains("\"skerry.upgrade-history\": 2"), "{floor}");
    // Every subsystem's format is in the one table, so the floor names them all.
    for name in [
        "skerry.config-try",
        "skerry.config-generation",
        "skerry.time-floor",
    ] {
        assert!(
            floor.contains(name),
            "{name} missing from the floor: {floor}"
        );
    }
    // The installer's state knows the committed release.
    let slots = skerry_installer::state::load_slots(&sim.layout.installer()).unwrap();
    assert_eq!(slots["B"].version, "1.1.0");
    // The history mirror resource.
    let mirrored = daemon
        .context
        .state
        .list::<skerryd_upgrade::resources::UpgradeHistoryEntry>(&Default::default())
        .unwrap();
    assert_eq!(mirrored.len(), h.entries.len());
    assert_eq!(daemon.power_requested(), None);
    // The overlay is marked committed, so the next upgrade need not wait for a reboot:
    // whichever slot starts next promotes it first.
    assert!(daemon.context.area.committed_or_main());

    // The next start, committed: the overlay is promoted, history at version 2.
    assert_eq!(sim.reboot(daemon).await, slot("B"));
    let daemon = sim.start();
    assert!(daemon.context.area.trial.is_none());
    assert!(!sim.layout.var().join("trial").exists());
    assert_eq!(daemon.status().unwrap().phase, UpgradePhaseName::Idle);
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_upgrade_during_probation_and_none_without_an_update_source() {
    let (mut sim, daemon) = Sim::started();
    sim.upgrade_and_reboot(daemon, "1.1.0").await;
    let daemon = sim.start();
    // The check has not reported yet: probation waits, and refuses upgrades.
    let err = daemon.upgrade("1.1.0", true).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(err.message().contains("probation"), "{}", err.message());
    assert!(err.message().contains("slot B"), "{}", err.message());
    daemon.wait_for(UpgradePhaseName::Probation).await;
    let mut deadline = None;
    for _ in 0..500 {
        deadline = daemon.status().and_then(|s| s.probation_deadline);
        if deadline.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(deadline.is_some(), "{:?}", daemon.status());
    daemon.stop().await;

    // A fresh machine without an update source.
    let (_bare, daemon) = Sim::started();
    daemon
        .context
        .state
        .destroy::<skerryd_core::resources::ActiveUpdate>("active", Some("config"))
        .unwrap();
    let err = daemon.upgrade("", false).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(
        err.message().contains("no update source"),
        "{}",
        err.message()
    );
    let err = daemon.upgrade("one.two", false).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_v2_whose_critical_check_fails_is_rolled_back_and_not_reinstalled_unless_forced() {
    let (mut sim, daemon) = Sim::started();
    assert_eq!(sim.upgrade_and_reboot(daemon, "1.2.0").await, slot("B"));
    let daemon = sim.start();
    assert!(
        !sim.running_image_healthy(&daemon),
        "1.2.0 is the broken release"
    );
    daemon.health(CheckState::Unhealthy, "GET /ready: connection refused");
    let status = daemon.wait_for(UpgradePhaseName::RollingBack).await;
    assert!(
        status.message.contains("connection refused"),
        "{}",
        status.message
    );
    assert_eq!(
        daemon.power_requested(),
        Some(PowerRequest::Reboot { tryboot: false })
    );
    assert_eq!(sim.status("B"), SlotStatus::Bad);
    assert!(daemon.has_event("upgrade.rolled_back"));
    // A second decision (or an upgrade) on this start is refused.
    let err = daemon.upgrade("1.1.0", false).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);

    assert_eq!(sim.reboot(daemon).await, slot("A"));
    let daemon = sim.start();
    let h = sim.history();
    let rolled = h
        .entries
        .iter()
        .rev()
        .find(|e| e.step == Step::RolledBack)
        .expect("the rollback is recorded");
    assert_eq!(rolled.release, "1.2.0");
    assert_eq!(rolled.by, Some(Decider::Probation));
    assert!(rolled.reason.contains(CHECK), "{}", rolled.reason);
    assert!(
        rolled.reason.contains("connection refused"),
        "{}",
        rolled.reason
    );
    assert!(h.is_rolled_back("1.2.0"));
    assert!(h.pending.is_none());

    // Not again: named, or as the newest release.
    daemon.health(CheckState::Healthy, "");
    let err = daemon.upgrade("1.2.0", false).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(err.message().contains("rolled back"), "{}", err.message());
    assert!(
        err.message().contains("connection refused"),
        "{}",
        err.message()
    );
    let err = daemon.upgrade("", false).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(err.message().contains("1.2.0"), "{}", err.message());
    assert_eq!(sim.status("B"), SlotStatus::Bad, "nothing was written");
    // Unless forced: recorded as such.
    let progress = daemon
        .upgrade("1.2.0", true)
        .await
        .expect("a forced upgrade");
    assert_eq!(
        phases(&progress).last(),
        Some(&pb::UpgradePhase::TrialReady)
    );
    let h = sim.history();
    let started = h
        .entries
        .iter()
        .rev()
        .find(|e| e.step == Step::InstallStarted)
        .unwrap();
    assert!(started.forced);
    assert!(h.pending.as_ref().unwrap().forced);
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trial_the_bootloader_gave_up_is_recorded_as_rolled_back() {
    let (mut sim, daemon) = Sim::started();
    daemon.health(CheckState::Healthy, "");
    daemon.upgrade("1.1.0", false).await.unwrap();
    daemon.stop().await;
    // The new slot never gets its daemon up: every attempt ends in a reset.
    let tries = sim.boot_state().tries();
    for _ in 0..tries {
        sim.power_off(None);
        assert_eq!(sim.power_on(), slot("B"));
    }
    sim.power_off(None);
    assert_eq!(sim.power_on(), slot("A"));
    let daemon = sim.start();
    let h = sim.history();
    let last = h.entries.last().unwrap();
    assert_eq!(last.step, Step::RolledBack);
    assert_eq!(last.by, Some(Decider::Bootloader));
    assert!(last.reason.contains("bootloader"), "{}", last.reason);
    assert!(h.is_rolled_back("1.1.0"));
    assert!(daemon.has_event("upgrade.rolled_back"));
    let err = daemon.upgrade("1.1.0", false).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_rollback_needs_another_good_slot() {
    let (mut sim, daemon) = Sim::started();
    // Slot B is bad on a fresh machine: nothing to go back to.
    let err = daemon.rollback("testing").await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(err.message().contains("slot B is bad"), "{}", err.message());
    sim.upgrade_and_reboot(daemon, "1.1.0").await;
    let daemon = sim.start();
    // During probation an operator may end the trial.
    let answer = daemon.rollback("the dashboard is blank").await.unwrap();
    assert_eq!(answer.target_slot, "A");
    assert_eq!(sim.status("B"), SlotStatus::Bad);
    assert_eq!(
        daemon.power_requested(),
        Some(PowerRequest::Reboot { tryboot: false })
    );
    let h = sim.history();
    let last = h.entries.last().unwrap();
    assert_eq!(
        (last.step, last.by),
        (Step::RolledBack, Some(Decider::Operator))
    );
    assert!(
        last.reason.contains("the dashboard is blank"),
        "{}",
        last.reason
    );
    assert!(h.is_rolled_back("1.1.0"));
    assert_eq!(sim.reboot(daemon).await, slot("A"));
    sim.start().stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probation_fails_without_a_critical_check_and_ignores_non_critical_ones() {
    let (mut sim, daemon) = Sim::started();
    sim.upgrade_and_reboot(daemon, "1.1.0").await;
    let daemon = sim.start();
    // Only a non-critical check, failing: it neither fails nor passes the trial.
    let status = skerryd_core::resources::HealthCheckStatus {
        critical: false,
        state: CheckState::Unhealthy,
        message: "disk 91% full".into(),
        last_run: None,
        consecutive_failures: 3,
        since: None,
    };
    daemon
        .context
        .state
        .apply_owned("metrics/disk", Some("services"), status)
        .unwrap();
    let status = daemon.wait_for(UpgradePhaseName::RollingBack).await;
    assert!(
        status.message.contains("no critical health check reported"),
        "{}",
        status.message
    );
    assert_eq!(sim.status("B"), SlotStatus::Bad);
    let h = sim.history();
    assert!(h.is_rolled_back("1.1.0"));
    assert!(!h.entries.last().unwrap().reason.contains("disk"));
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_history_written_by_a_newer_release_is_named_and_does_not_keep_the_daemon_down() {
    let mut sim = Sim::new();
    sim.power_on();
    std::fs::write(
        sim.layout.upgrade().join("history.json"),
        br#"{"format":"skerry.upgrade-history","version":9,"body":{}}"#,
    )
    .unwrap();
    let daemon = sim.start();
    let status = daemon.status().unwrap();
    assert_eq!(status.phase, UpgradePhaseName::Failed);
    assert!(status.message.contains("version 9"), "{}", status.message);
    assert!(daemon.has_event("upgrade.error"));
    daemon.health(CheckState::Healthy, "");
    let err = daemon.upgrade("1.1.0", false).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(err.message().contains("version 9"), "{}", err.message());
    assert_eq!(sim.status("B"), SlotStatus::Bad, "nothing was written");
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_raspberry_pi_trial_runs_on_the_one_shot_tryboot_and_a_lost_flag_tries_nothing() {
    let mut sim = Sim::with(skerry_hil::Backend::Tryboot);
    assert_eq!(sim.power_on(), slot("A"));
    let daemon = sim.start();
    daemon.health(CheckState::Healthy, "");
    daemon.upgrade("1.1.0", false).await.unwrap();
    assert_eq!(
        daemon.reboot_request_after_upgrade().await,
        Some(PowerRequest::Reboot { tryboot: true })
    );
    // The power is cut instead: the flag is lost, slot A starts, nothing was tried.
    daemon.stop().await;
    sim.power_off(None);
    assert_eq!(sim.power_on(), slot("A"));
    let daemon = sim.start();
    let h = sim.history();
    let last = h.entries.last().unwrap();
    assert_eq!(last.step, Step::Interrupted, "{last:?}");
    assert!(!h.is_rolled_back("1.1.0"));
    assert!(h.pending.is_none());
    assert_eq!(sim.boot_state().trial(), None, "the trial was ended");

    // Again, and this time the reboot arms tryboot: the trial runs and commits.
    assert_eq!(sim.upgrade_and_reboot(daemon, "1.1.0").await, slot("B"));
    let daemon = sim.start();
    daemon.health(CheckState::Healthy, "");
    daemon.wait_for(UpgradePhaseName::Committed).await;
    assert_eq!(sim.status("B"), SlotStatus::Good);
    assert_eq!(sim.reboot(daemon).await, slot("B"), "B is the default now");
    sim.start().stop().await;
}
