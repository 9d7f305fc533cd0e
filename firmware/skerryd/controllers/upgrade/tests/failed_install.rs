//! An install that fails part-way (a mirror serving damaged chunks) leaves the target
//! slot marked bad, the machine where it was, and the failure in the history; the next
//! upgrade from a good source resumes what was written.

mod common;

use std::path::{Path, PathBuf};

use common::{published, Sim};
use skerry_boot_state::SlotStatus;
use skerry_config::kinds::{HumanDuration, UpdateConfig};
use skerry_hil::updates::BOARD;
use skerryd_core::resources::{ActiveUpdate, CheckState, SINGLETON};
use skerryd_upgrade::history::Step;
use skerryd_upgrade::resources::UpgradePhaseName;

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// A copy of the repository whose `version` image pack was altered after signing.
fn damaged_mirror(dir: &Path, version: &str) -> PathBuf {
    let mirror = dir.join("damaged-mirror");
    copy_tree(&published().repo, &mirror);
    let release = mirror.join("targets").join(BOARD).join(version);
    let mut damaged = 0;
    for entry in std::fs::read_dir(&release).unwrap() {
        let path = entry.unwrap().path();
        if path.to_string_lossy().ends_with(".image.pack") {
            let mut bytes = std::fs::read(&path).unwrap();
            bytes.iter_mut().for_each(|b| *b = !*b);
            std::fs::write(&path, bytes).unwrap();
            damaged += 1;
        }
    }
    assert!(damaged > 0, "no image pack under {}", release.display());
    mirror
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_install_leaves_the_target_bad_and_the_retry_resumes() {
    // First a committed upgrade, so that both slots are good.
    let (mut sim, daemon) = Sim::started();
    sim.upgrade_and_reboot(daemon, "1.1.0").await;
    let daemon = sim.start();
    daemon.health(CheckState::Healthy, "");
    daemon.wait_for(UpgradePhaseName::Committed).await;
    assert_eq!(sim.reboot(daemon).await, common::slot("B"));
    assert_eq!(sim.status("A"), SlotStatus::Good);

    let daemon = sim.start();
    daemon.health(CheckState::Healthy, "");
    let scratch = tempfile::tempdir().unwrap();
    let mirror = damaged_mirror(scratch.path(), "1.2.0");
    daemon
        .context
        .state
        .apply_owned(
            SINGLETON,
            Some("config"),
            ActiveUpdate(UpdateConfig {
                repository: format!("file://{}", mirror.display()),
                trusted_root: published().root.display().to_string(),
                board: BOARD.into(),
                channel: "stable".into(),
                probation: HumanDuration(common::PROBATION),
            }),
        )
        .unwrap();
    let err = daemon.upgrade("1.2.0", false).await.unwrap_err();
    assert!(err.message().contains("1.2.0"), "{}", err.message());
    // Slot A was good; written part-way, it must never boot.
    assert_eq!(sim.status("A"), SlotStatus::Bad);
    assert_eq!(sim.status("B"), SlotStatus::Good);
    assert_eq!(daemon.power_requested(), None);
    assert_eq!(daemon.status().unwrap().phase, UpgradePhaseName::Failed);
    let h = sim.history();
    assert_eq!(h.entries.last().unwrap().step, Step::InstallFailed);
    assert!(h.pending.is_none());
    assert!(
        !h.is_rolled_back("1.2.0"),
        "an install failure is no rollback"
    );

    // The good source: the same install resumes and the trial begins.
    daemon.configure(published());
    let progress = daemon.upgrade("1.2.0", false).await.expect("the retry");
    let verified = progress
        .iter()
        .find(|p| p.phase == skerry_api::pb::UpgradePhase::Verifying as i32)
        .unwrap();
    assert!(verified.message.contains("resumed"), "{}", verified.message);
    assert!(matches!(sim.status("A"), SlotStatus::Trial { .. }));
    daemon.stop().await;
}
