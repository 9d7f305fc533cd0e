//! What survives a restart of the daemon and what a start does: the factory config, a
//! staged config taking effect, a config on try reverted (after a reboot, or when its
//! time ran out) or kept with what is left of its time, generations that keep counting,
//! and an unreadable store that stops the start naming the file.

mod common;

use std::time::Duration;

use common::{config, config_dir, fresh, lose_run, start, try_start, try_start_with};
use skerry_api::pb::ApplyMode;
use skerry_config::persist::{ConfigHistory, HISTORY_LEN};

fn stored(root: &std::path::Path, name: &str) -> Option<String> {
    std::fs::read_to_string(config_dir(root).join(name)).ok()
}

#[tokio::test]
async fn the_config_and_its_generation_survive_a_restart() {
    let (dir, daemon) = fresh().await;
    daemon
        .applied("pump-7", &["web"], ApplyMode::NoReboot)
        .await;
    daemon.applied("pump-8", &["web"], ApplyMode::Reboot).await;
    daemon.stop().await;
    lose_run(dir.path());

    let daemon = start(dir.path()).await;
    assert_eq!(daemon.generation(), 2);
    assert_eq!(daemon.hostname().as_deref(), Some("pump-8"));
    let next = daemon.applied("pump-9", &[], ApplyMode::NoReboot).await;
    assert_eq!(next.generation, 3);
    daemon.stop().await;
}

#[tokio::test]
async fn a_staged_config_takes_effect_only_at_the_next_start() {
    let (dir, daemon) = fresh().await;
    daemon.applied("pump-7", &[], ApplyMode::NoReboot).await;
    daemon
        .applied("pump-staged", &["web"], ApplyMode::Staged)
        .await;
    assert_eq!(daemon.hostname().as_deref(), Some("pump-7"));
    daemon.stop().await;
    assert!(stored(dir.path(), "staged.json").is_some());

    let daemon = start(dir.path()).await;
    assert_eq!(daemon.hostname().as_deref(), Some("pump-staged"));
    let status = daemon.status().unwrap();
    assert_eq!((status.generation, status.staged_generation), (2, None));
    let applied = daemon.events_of("config.applied");
    assert_eq!(applied.len(), 1);
    assert_eq!(applied[0].attributes["mode"], "staged");
    assert!(stored(dir.path(), "staged.json").is_none());
    daemon.stop().await;

    // Once: the start after that has nothing staged to apply.
    let daemon = start(dir.path()).await;
    assert_eq!(daemon.generation(), 2);
    assert!(daemon.events_of("config.applied").is_empty());
    daemon.stop().await;
}

#[tokio::test]
async fn a_later_apply_drops_the_staged_config() {
    let (dir, daemon) = fresh().await;
    daemon.applied("pump-staged", &[], ApplyMode::Staged).await;
    daemon.applied("pump-now", &[], ApplyMode::NoReboot).await;
    assert_eq!(daemon.status().unwrap().staged_generation, None);
    daemon.stop().await;
    let daemon = start(dir.path()).await;
    assert_eq!(daemon.hostname().as_deref(), Some("pump-now"));
    assert_eq!(daemon.generation(), 2);
    daemon.stop().await;
}

#[tokio::test]
async fn a_try_pending_at_a_reboot_is_reverted_at_the_next_start() {
    let (dir, daemon) = fresh().await;
    daemon
        .applied("pump-7", &["web"], ApplyMode::NoReboot)
        .await;
    let answer = daemon
        .try_apply(&config("pump-try", &[]), Duration::from_secs(600))
        .await
        .unwrap();
    assert_eq!(answer.generation, 2);
    drop(daemon);
    // A reboot: run/ is lost, the store stays.
    lose_run(dir.path());

    let daemon = start(dir.path()).await;
    assert_eq!(daemon.hostname().as_deref(), Some("pump-7"));
    let status = daemon.status().unwrap();
    assert_eq!(status.generation, 1);
    assert!(status.pending_try.is_none());
    let reverted = daemon.events_of("config.reverted");
    assert_eq!(reverted.len(), 1, "{:?}", daemon.event_kinds());
    assert_eq!(reverted[0].attributes["generation"], "2");
    assert_eq!(reverted[0].attributes["reverted_to"], "1");
    assert!(reverted[0].attributes["reason"].contains("restarted"));
    assert!(stored(dir.path(), "try.json").is_none());
    assert!(stored(dir.path(), "config.json")
        .unwrap()
        .contains("pump-7"));
    // Confirming the reverted try is refused; generations go on past it.
    daemon.assert_try_closed(2).await;
    daemon.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_try_survives_a_daemon_restart_in_the_same_boot_and_still_reverts() {
    let (dir, daemon) = fresh().await;
    daemon.applied("pump-7", &[], ApplyMode::NoReboot).await;
    daemon
        .try_apply(&config("pump-try", &[]), Duration::from_secs(600))
        .await
        .unwrap();
    daemon.stop().await;

    let daemon = start(dir.path()).await;
    assert_eq!(daemon.hostname().as_deref(), Some("pump-try"));
    let pending = daemon.status().unwrap().pending_try.unwrap();
    assert_eq!((pending.generation, pending.reverts_to), (2, 1));
    assert!(daemon.events_of("config.reverted").is_empty());
    tokio::time::sleep(Duration::from_secs(601)).await;
    daemon
        .eventually("the revert", |d| d.hostname().as_deref() == Some("pump-7"))
        .await;
    assert_eq!(daemon.events_of("config.reverted").len(), 1);
    daemon.stop().await;
}

#[tokio::test]
async fn a_try_whose_time_ran_out_while_stopped_is_reverted_at_start() {
    let (dir, daemon) = fresh().await;
    daemon.applied("pump-7", &[], ApplyMode::NoReboot).await;
    daemon
        .try_apply(&config("pump-try", &[]), Duration::from_secs(1))
        .await
        .unwrap();
    daemon.stop().await;
    // The revert time is on the wall clock.
    std::thread::sleep(Duration::from_millis(1200));

    let daemon = start(dir.path()).await;
    assert_eq!(daemon.hostname().as_deref(), Some("pump-7"));
    let reverted = daemon.events_of("config.reverted");
    assert_eq!(reverted.len(), 1);
    assert!(reverted[0].attributes["reason"].contains("time ran out"));
    daemon.stop().await;
}

#[tokio::test]
async fn a_confirmed_try_survives_restarts() {
    let (dir, daemon) = fresh().await;
    daemon.applied("pump-7", &[], ApplyMode::NoReboot).await;
    let answer = daemon
        .try_apply(&config("pump-try", &[]), Duration::from_secs(600))
        .await
        .unwrap();
    daemon.confirm(answer.generation).await.unwrap();
    daemon.stop().await;
    lose_run(dir.path());

    let daemon = start(dir.path()).await;
    assert_eq!(daemon.hostname().as_deref(), Some("pump-try"));
    assert_eq!(daemon.generation(), 2);
    assert!(daemon.status().unwrap().pending_try.is_none());
    assert!(daemon.events_of("config.reverted").is_empty());
    daemon.stop().await;
}

#[tokio::test]
async fn an_unreadable_store_file_stops_the_start_naming_it() {
    for name in ["config.json", "try.json", "staged.json", "history.json"] {
        let (dir, daemon) = fresh().await;
        daemon.applied("pump-7", &[], ApplyMode::NoReboot).await;
        daemon.stop().await;
        let path = config_dir(dir.path()).join(name);
        std::fs::write(&path, b"\x00garbage").unwrap();
        let error = try_start(dir.path()).err().expect("the start fails");
        let chain = format!("{error:#}");
        assert!(
            chain.contains(&path.display().to_string()),
            "{name}: {chain}"
        );
        // Nothing was reset.
        assert_eq!(std::fs::read(&path).unwrap(), b"\x00garbage");
        if name != "config.json" {
            assert!(stored(dir.path(), "config.json")
                .unwrap()
                .contains("pump-7"));
        }
    }
}

const FACTORY: &str = "\
apiVersion: skerry.dev/v1alpha1
kind: MachineConfig
hostname: factory-1
";

#[tokio::test]
async fn the_factory_config_is_generation_one_of_an_empty_store() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.yaml"), FACTORY).unwrap();
    let daemon = start(dir.path()).await;
    assert_eq!(daemon.hostname().as_deref(), Some("factory-1"));
    assert_eq!(daemon.generation(), 1);
    assert_eq!(
        daemon.events_of("config.applied")[0].attributes["source"],
        "factory"
    );
    daemon.applied("pump-7", &[], ApplyMode::NoReboot).await;
    daemon.stop().await;
    // Only an empty store takes it.
    let daemon = start(dir.path()).await;
    assert_eq!(daemon.hostname().as_deref(), Some("pump-7"));
    assert_eq!(daemon.generation(), 2);
    daemon.stop().await;
}

#[tokio::test]
async fn an_invalid_factory_config_stops_the_start_with_every_problem() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.yaml");
    std::fs::write(
        &path,
        "apiVersion: skerry.dev/v1alpha1\nkind: MachineConfig\nhostname: -bad-\n---\napiVersion: skerry.dev/v1alpha1\nkind: ServiceConfig\nname: web\ncommand: [/bin/web]\ndependsOn: [ghost]\n",
    )
    .unwrap();
    let error = try_start(dir.path()).err().expect("the start fails");
    let chain = format!("{error:#}");
    assert!(chain.contains(&path.display().to_string()), "{chain}");
    assert!(chain.contains("2 problem(s)"), "{chain}");
    assert!(chain.contains("line 3"), "{chain}");
    assert!(chain.contains("ServiceConfig/web"), "{chain}");
    assert!(!config_dir(dir.path()).join("config.json").exists());
}

#[tokio::test]
async fn the_history_is_bounded() {
    let (dir, daemon) = fresh().await;
    for i in 0..HISTORY_LEN + 4 {
        daemon
            .applied(&format!("pump-{i}"), &[], ApplyMode::NoReboot)
            .await;
    }
    daemon.stop().await;
    let bytes = std::fs::read(config_dir(dir.path()).join("history.json")).unwrap();
    let history = ConfigHistory::from_bytes(&bytes).unwrap();
    let generations: Vec<u64> = history.entries().map(|e| e.generation).collect();
    let last = u64::try_from(HISTORY_LEN + 4).unwrap();
    assert_eq!(generations.len(), HISTORY_LEN);
    assert_eq!(generations.last(), Some(&last));
}

#[tokio::test]
async fn the_store_lives_where_the_area_says_during_a_trial() {
    let dir = tempfile::tempdir().unwrap();
    let overlay = dir.path().join("var/skerry/trial/B/config");
    std::fs::create_dir_all(&overlay).unwrap();
    let adjust = |ctx: &mut skerryd_core::Context| {
        ctx.area.config = overlay.clone();
        ctx.area.trial = Some("B".into());
    };
    let daemon = try_start_with(dir.path(), adjust).unwrap();
    daemon
        .eventually("the first status", |d| d.status().is_some())
        .await;
    daemon.applied("pump-trial", &[], ApplyMode::NoReboot).await;
    daemon.stop().await;
    assert!(overlay.join("config.json").exists());
    assert!(!config_dir(dir.path()).join("config.json").exists());
}
