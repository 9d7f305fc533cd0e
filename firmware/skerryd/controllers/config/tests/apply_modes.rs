//! Each apply mode through `ConfigOps` with a real runtime: what is stored, what is
//! published, what is refused and with which status.

mod common;

use std::time::Duration;

use common::{config, config_with_identity, fresh, request, try_request};
use skerry_api::pb::{self, ApplyMode};
use skerryd_core::resources::{ActiveService, ActiveTime, SINGLETON};

const TIME: &str = "---
apiVersion: skerry.dev/v1alpha1
kind: TimeConfig
sntp:
  servers: [192.168.10.1]
";
use skerryd_core::PowerRequest;
use tonic::Code;

#[tokio::test]
async fn no_config_at_all_is_a_valid_empty_config() {
    let (_dir, daemon) = fresh().await;
    let status = daemon.status().unwrap();
    assert_eq!(status.generation, 0);
    assert!(status.pending_try.is_none());
    assert!(daemon.hostname().is_none());
    daemon.stop().await;
}

#[tokio::test]
async fn no_reboot_applies_and_publishes_the_config() {
    let (_dir, daemon) = fresh().await;
    let answer = daemon
        .applied("pump-7", &["web", "db"], ApplyMode::NoReboot)
        .await;
    assert_eq!(answer.generation, 1);
    assert!(!answer.unchanged);
    assert!(!answer.reboot_pending);
    assert!(answer.diff.contains("+hostname: pump-7"), "{}", answer.diff);
    // The answer comes after the publication.
    assert_eq!(daemon.hostname().as_deref(), Some("pump-7"));
    assert_eq!(daemon.generation(), 1);
    assert!(daemon.state.get::<ActiveService>("web").is_ok());
    assert!(daemon.state.get::<ActiveService>("db").is_ok());
    let applied = daemon.events_of("config.applied");
    assert_eq!(applied.len(), 1);
    assert_eq!(applied[0].attributes["generation"], "1");
    assert!(daemon.power.requests().is_empty());

    // A removed service's resource is destroyed; generations count up.
    let answer = daemon
        .applied("pump-8", &["web"], ApplyMode::NoReboot)
        .await;
    assert_eq!(answer.generation, 2);
    assert_eq!(daemon.hostname().as_deref(), Some("pump-8"));
    assert!(daemon.state.get::<ActiveService>("web").is_ok());
    assert!(daemon.state.get::<ActiveService>("db").is_err());
    // A document added and removed again: its resource follows.
    let with_time = format!("{}{TIME}", config("pump-8", &[]));
    daemon.apply(&with_time, ApplyMode::NoReboot).await.unwrap();
    assert!(daemon.state.get::<ActiveTime>(SINGLETON).is_ok());
    assert!(daemon.state.get::<ActiveService>("web").is_err());
    daemon.applied("pump-8", &[], ApplyMode::NoReboot).await;
    assert!(daemon.state.get::<ActiveTime>(SINGLETON).is_err());
    assert_eq!(daemon.generation(), 4);
    daemon.stop().await;
}

#[tokio::test]
async fn an_identical_config_changes_nothing() {
    let (dir, daemon) = fresh().await;
    let text = config("pump-7", &["web"]);
    daemon.apply(&text, ApplyMode::NoReboot).await.unwrap();
    let before = common::store_bytes(dir.path());
    let again = daemon.apply(&text, ApplyMode::Reboot).await.unwrap();
    assert!(again.unchanged);
    assert_eq!(again.generation, 1);
    assert!(!again.reboot_pending);
    assert_eq!(common::store_bytes(dir.path()), before);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(daemon.power.requests().is_empty());
    daemon.stop().await;
}

#[tokio::test]
async fn no_reboot_is_refused_for_a_change_that_needs_a_reboot() {
    let (dir, daemon) = fresh().await;
    daemon.applied("pump-7", &[], ApplyMode::NoReboot).await;
    let before = common::store_bytes(dir.path());
    let status = daemon
        .apply(&config_with_identity("pump-7", "m-42"), ApplyMode::NoReboot)
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert!(
        status.message().contains("identity"),
        "{}",
        status.message()
    );
    assert!(status.message().contains("reboot"), "{}", status.message());
    assert_eq!(common::store_bytes(dir.path()), before);
    assert_eq!(daemon.generation(), 1);
    // try cannot carry it either: it reverts without a reboot.
    let status = daemon
        .try_apply(
            &config_with_identity("pump-7", "m-42"),
            Duration::from_secs(30),
        )
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    daemon.stop().await;
}

#[tokio::test]
async fn reboot_stores_the_config_then_asks_for_a_reboot_after_answering() {
    let (dir, daemon) = fresh().await;
    let answer = daemon
        .apply(&config_with_identity("pump-7", "m-42"), ApplyMode::Reboot)
        .await
        .unwrap();
    assert!(answer.reboot_pending);
    assert_eq!(answer.generation, 1);
    // Not yet: the answer goes out first.
    assert!(daemon.power.requests().is_empty());
    assert!(common::store_bytes(dir.path())
        .iter()
        .any(|(name, bytes)| name == "config.json"
            && String::from_utf8_lossy(bytes).contains("m-42")));
    daemon
        .eventually("the reboot request", |d| !d.power.requests().is_empty())
        .await;
    assert_eq!(
        daemon.power.requests(),
        vec![PowerRequest::Reboot { tryboot: false }]
    );
    daemon.stop().await;
}

#[tokio::test]
async fn the_mode_must_be_set_and_known() {
    let (_dir, daemon) = fresh().await;
    let text = config("pump-7", &[]);
    let status = daemon
        .apply(&text, ApplyMode::Unspecified)
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("mode"), "{}", status.message());
    let mut unknown = request(&text, ApplyMode::NoReboot);
    unknown.mode = 99;
    let status = daemon.ops.apply(unknown).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    // A try timeout with another mode is a mistake, said so.
    let mut stray = try_request(&text, Duration::from_secs(30));
    stray.mode = ApplyMode::NoReboot as i32;
    let status = daemon.ops.apply(stray).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(daemon.generation(), 0);
    daemon.stop().await;
}

#[tokio::test]
async fn the_try_timeout_is_bounded() {
    let (_dir, daemon) = fresh().await;
    let text = config("pump-7", &[]);
    for timeout in [Duration::from_millis(200), Duration::from_secs(25 * 3600)] {
        let status = daemon
            .ops
            .apply(try_request(&text, timeout))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{timeout:?}");
        assert!(status.message().contains("try_timeout"));
    }
    let mut negative = try_request(&text, Duration::from_secs(5));
    negative.try_timeout = Some(prost_types::Duration {
        seconds: -5,
        nanos: 0,
    });
    let status = daemon.ops.apply(negative).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(daemon.generation(), 0);
    daemon.stop().await;
}

#[tokio::test]
async fn oversized_input_is_refused_before_it_is_decoded() {
    let (_dir, daemon) = fresh().await;
    let huge = "#".repeat(skerry_config::Limits::DEFAULT.max_bytes + 1);
    let status = daemon.apply(&huge, ApplyMode::NoReboot).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("limit"), "{}", status.message());
    daemon.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_try_reverts_by_itself_when_its_time_runs_out() {
    let (dir, daemon) = fresh().await;
    daemon
        .applied("pump-7", &["web"], ApplyMode::NoReboot)
        .await;
    let answer = daemon
        .try_apply(&config("pump-try", &["db"]), Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(answer.generation, 2);
    assert!(answer.revert_at.is_some());
    assert_eq!(daemon.hostname().as_deref(), Some("pump-try"));
    assert!(daemon.state.get::<ActiveService>("db").is_ok());
    assert!(daemon.state.get::<ActiveService>("web").is_err());
    let status = daemon.status().unwrap();
    let pending = status.pending_try.unwrap();
    assert_eq!((pending.generation, pending.reverts_to), (2, 1));
    assert_eq!(daemon.events_of("config.try").len(), 1);

    // Still on try just before its time.
    tokio::time::sleep(Duration::from_secs(59)).await;
    assert_eq!(daemon.hostname().as_deref(), Some("pump-try"));
    tokio::time::sleep(Duration::from_secs(2)).await;
    daemon
        .eventually("the revert", |d| d.hostname().as_deref() == Some("pump-7"))
        .await;
    assert!(daemon.state.get::<ActiveService>("web").is_ok());
    assert!(daemon.state.get::<ActiveService>("db").is_err());
    let status = daemon.status().unwrap();
    assert_eq!(status.generation, 1);
    assert!(status.pending_try.is_none());
    let reverted = daemon.events_of("config.reverted");
    assert_eq!(reverted.len(), 1);
    assert_eq!(reverted[0].attributes["generation"], "2");
    assert_eq!(reverted[0].attributes["reverted_to"], "1");
    // The store holds the reverted config, and nothing on try.
    let files = common::store_bytes(dir.path());
    assert!(!files.iter().any(|(name, _)| name == "try.json"));
    let stored = &files
        .iter()
        .find(|(name, _)| name == "config.json")
        .unwrap()
        .1;
    assert!(String::from_utf8_lossy(stored).contains("pump-7"));
    // Confirming it now is too late.
    // The next generation is still a new one.
    daemon.assert_try_closed(2).await;
    daemon.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_confirmed_try_stays() {
    let (_dir, daemon) = fresh().await;
    let answer = daemon.applied("pump-try", &[], ApplyMode::Try).await;
    // The default timeout is a minute.
    let revert_at = std::time::SystemTime::try_from(answer.revert_at.unwrap()).unwrap();
    let left = revert_at
        .duration_since(std::time::SystemTime::now())
        .unwrap();
    assert!(
        left > Duration::from_secs(50) && left <= Duration::from_secs(60),
        "{left:?}"
    );
    // A wrong generation is refused and changes nothing.
    let wrong = daemon.confirm(7).await.unwrap_err();
    assert_eq!(wrong.code(), Code::FailedPrecondition);
    assert!(
        wrong.message().contains("generation 1"),
        "{}",
        wrong.message()
    );
    // Another apply waits for the try to be settled.
    let busy = daemon
        .apply(&config("pump-other", &[]), ApplyMode::NoReboot)
        .await
        .unwrap_err();
    assert_eq!(busy.code(), Code::FailedPrecondition);
    daemon.confirm(answer.generation).await.unwrap();
    assert!(daemon.status().unwrap().pending_try.is_none());
    tokio::time::sleep(Duration::from_secs(120)).await;
    assert_eq!(daemon.hostname().as_deref(), Some("pump-try"));
    assert_eq!(daemon.generation(), 1);
    assert_eq!(daemon.events_of("config.confirmed").len(), 1);
    assert!(daemon.events_of("config.reverted").is_empty());
    daemon.stop().await;
}

#[tokio::test]
async fn staged_is_stored_but_not_in_effect() {
    let (_dir, daemon) = fresh().await;
    daemon.applied("pump-7", &[], ApplyMode::NoReboot).await;
    let answer = daemon
        .apply(&config_with_identity("pump-next", "m-1"), ApplyMode::Staged)
        .await
        .unwrap();
    assert_eq!(answer.generation, 2);
    assert!(!answer.reboot_pending);
    assert_eq!(daemon.hostname().as_deref(), Some("pump-7"));
    let status = daemon.status().unwrap();
    assert_eq!((status.generation, status.staged_generation), (1, Some(2)));
    assert_eq!(daemon.events_of("config.staged").len(), 1);
    // Staging the same config again is no change.
    let again = daemon
        .apply(&config_with_identity("pump-next", "m-1"), ApplyMode::Staged)
        .await
        .unwrap();
    assert!(again.unchanged);
    assert_eq!(again.generation, 2);
    assert!(daemon.power.requests().is_empty());
    daemon.stop().await;
}

#[tokio::test]
async fn concurrent_applies_each_get_their_own_generation() {
    let (_dir, daemon) = fresh().await;
    let texts: Vec<String> = (0..8).map(|i| config(&format!("pump-{i}"), &[])).collect();
    let answers = futures_join(&daemon, &texts).await;
    let mut generations: Vec<u64> = answers.iter().map(|a| a.generation).collect();
    generations.sort_unstable();
    assert_eq!(generations, (1..=8).collect::<Vec<_>>());
    assert_eq!(daemon.generation(), 8);
    daemon.stop().await;
}

async fn futures_join(
    daemon: &common::Daemon,
    texts: &[String],
) -> Vec<pb::ApplyConfigurationResponse> {
    let mut tasks = tokio::task::JoinSet::new();
    for text in texts {
        let ops = daemon.ops.clone();
        let req = request(text, ApplyMode::NoReboot);
        tasks.spawn(async move { ops.apply(req).await });
    }
    let mut answers = Vec::new();
    while let Some(answer) = tasks.join_next().await {
        answers.push(answer.unwrap().unwrap());
    }
    answers
}
