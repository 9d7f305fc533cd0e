//! End to end on a simulated board: the real skerryd binary in `--root` mode on
//! file-backed slots with a real U-Boot environment, rebooted through its power
//! requests by the bootloader's own power-on step (hil-tests' DaemonBoard), driven
//! through its API over mutual TLS as an operator would.

use std::path::Path;
use std::time::{Duration, Instant};

use prost::Message as _;
use skerry_api::pb;
use skerry_hil::daemon_scenario::UpdateSourceConfig;
use skerry_hil::updates::{Release, SignedReleases, BOARD};
use skerry_hil::{DaemonBoard, DaemonBoardOptions};
use tonic::Code;

const ADMIN: Option<&str> = Some("os:admin");
const READER: Option<&str> = Some("os:reader");
/// A reboot, an install or a probation takes at most this long here.
const STEP: Duration = Duration::from_secs(90);

fn skerryd() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_skerryd"))
}

/// The machine config of these tests (hil-tests' stories): a hostname, a service whose
/// critical check passes only on a healthy image, and (when `releases` is given) the
/// signed local repository with a probation of 4 s.
fn machine_config(board: &DaemonBoard, hostname: &str, releases: Option<&Path>) -> String {
    let root = releases.map(|dir| dir.join("trusted-root.json"));
    let repo = releases.map(|dir| dir.join("repo"));
    let updates = match (&repo, &root) {
        (Some(repository), Some(trusted_root)) => Some(UpdateSourceConfig {
            repository,
            trusted_root,
            probation: Duration::from_secs(4),
        }),
        _ => None,
    };
    skerry_hil::daemon_scenario::machine_config(board, hostname, updates)
}

fn build(dir: &Path, with_releases: bool) -> (DaemonBoard, Option<SignedReleases>) {
    let mut board = DaemonBoard::build(dir, skerryd(), DaemonBoardOptions::default()).unwrap();
    let releases = with_releases.then(|| {
        let releases_dir = dir.join("releases");
        let releases =
            SignedReleases::publish(&releases_dir, &skerry_hil::images::factory()).unwrap();
        std::fs::write(
            releases_dir.join("trusted-root.json"),
            releases.trusted_root(),
        )
        .unwrap();
        releases
    });
    let config = machine_config(
        &board,
        "sim-01",
        with_releases.then(|| dir.join("releases")).as_deref(),
    );
    std::fs::write(board.root().join("config.yaml"), config).unwrap();
    board.power_on().unwrap();
    let _ = &mut board;
    (board, releases)
}

async fn apply(
    board: &DaemonBoard,
    config: &str,
    mode: pb::ApplyMode,
    dry_run: bool,
) -> Result<pb::ApplyConfigurationResponse, tonic::Status> {
    let mut client = board.client(ADMIN).await.unwrap();
    client
        .apply_configuration(pb::ApplyConfigurationRequest {
            configuration: config.as_bytes().to_vec(),
            mode: mode.into(),
            dry_run,
            try_timeout: (mode == pb::ApplyMode::Try).then_some(prost_types::Duration {
                seconds: 3,
                nanos: 0,
            }),
        })
        .await
        .map(tonic::Response::into_inner)
}

fn hostname_file(board: &DaemonBoard) -> String {
    std::fs::read_to_string(board.root().join("etc").join("hostname"))
        .unwrap_or_default()
        .trim()
        .to_owned()
}

/// Waits until `check` holds, for at most `limit`.
async fn eventually(
    limit: Duration,
    what: &str,
    board: &DaemonBoard,
    mut check: impl FnMut() -> bool,
) {
    let deadline = Instant::now() + limit;
    while !check() {
        assert!(
            Instant::now() < deadline,
            "{what} did not happen within {limit:?}\n{}",
            board.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn health(board: &DaemonBoard) -> pb::HealthResponse {
    let mut client = board.client(READER).await.unwrap();
    client
        .health(pb::HealthRequest {})
        .await
        .unwrap()
        .into_inner()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_is_applied_and_a_rejected_one_lists_every_problem() {
    let dir = tempfile::tempdir().unwrap();
    let (board, _) = build(dir.path(), false);
    eventually(STEP, "the factory hostname rendered", &board, || {
        hostname_file(&board) == "sim-01"
    })
    .await;

    let renamed = machine_config(&board, "sim-02", None);
    let dry = apply(&board, &renamed, pb::ApplyMode::NoReboot, true)
        .await
        .unwrap();
    assert!(dry.diff.contains("sim-02"), "{}", dry.diff);
    assert_eq!(hostname_file(&board), "sim-01", "a dry run changes nothing");

    let applied = apply(&board, &renamed, pb::ApplyMode::NoReboot, false)
        .await
        .unwrap();
    assert!(applied.generation >= 2, "{applied:?}");
    eventually(STEP, "the new hostname rendered", &board, || {
        hostname_file(&board) == "sim-02"
    })
    .await;

    let broken = "apiVersion: skerry.dev/v1alpha1\nkind: MachineConfig\nhostname: -bad-\n---\napiVersion: skerry.dev/v1alpha1\nkind: ServiceConfig\nname: x\ncommand: []\ndependsOn: [nobody]\n";
    let status = apply(&board, broken, pb::ApplyMode::NoReboot, false)
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let problems = pb::ConfigurationProblems::decode(status.details()).unwrap();
    assert!(problems.problems.len() >= 2, "{problems:?}");
    assert!(problems.problems.iter().all(|p| p.line > 0), "{problems:?}");
    assert_eq!(
        hostname_file(&board),
        "sim-02",
        "a rejected config changes nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_try_reverts_by_itself_unless_confirmed() {
    let dir = tempfile::tempdir().unwrap();
    let (board, _) = build(dir.path(), false);
    eventually(STEP, "the factory hostname rendered", &board, || {
        hostname_file(&board) == "sim-01"
    })
    .await;
    let tried = machine_config(&board, "sim-try", None);
    let answer = apply(&board, &tried, pb::ApplyMode::Try, false)
        .await
        .unwrap();
    assert!(answer.revert_at.is_some(), "{answer:?}");
    eventually(STEP, "the tried hostname rendered", &board, || {
        hostname_file(&board) == "sim-try"
    })
    .await;
    eventually(STEP, "the try reverted", &board, || {
        hostname_file(&board) == "sim-01"
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_cannot_upgrade_or_reboot() {
    let dir = tempfile::tempdir().unwrap();
    let (board, _) = build(dir.path(), false);
    let mut reader = board.client(READER).await.unwrap();
    let status = reader
        .upgrade(pb::UpgradeRequest::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    let status = reader.reboot(pb::RebootRequest {}).await.unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    assert!(board
        .client(None)
        .await
        .unwrap()
        .version(pb::VersionRequest {})
        .await
        .is_err());
    let version = reader
        .version(pb::VersionRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(version.booted_slot, "A");
    assert_eq!(version.board, BOARD);
}

async fn upgrade(
    board: &DaemonBoard,
    version: &str,
    force: bool,
) -> Result<Vec<pb::UpgradeProgress>, tonic::Status> {
    let mut client = board.client(ADMIN).await.unwrap();
    let mut stream = client
        .upgrade(pb::UpgradeRequest {
            release_version: version.to_owned(),
            force,
        })
        .await?
        .into_inner();
    let mut seen = Vec::new();
    while let Some(progress) = stream.message().await? {
        seen.push(progress);
    }
    Ok(seen)
}

async fn wait_healthy(board: &DaemonBoard) {
    let deadline = Instant::now() + STEP;
    loop {
        if health(board).await.overall == pb::HealthStatus::Healthy as i32 {
            return;
        }
        assert!(Instant::now() < deadline, "never healthy\n{}", board.logs());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn events(board: &DaemonBoard) -> Vec<pb::Event> {
    let mut client = board.client(READER).await.unwrap();
    let mut stream = client
        .events(pb::EventsRequest {
            after_id: String::new(),
            watch: false,
        })
        .await
        .unwrap()
        .into_inner();
    let mut all = Vec::new();
    while let Some(event) = stream.message().await.unwrap() {
        all.push(event);
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgrade_commits_after_probation_and_a_failing_one_rolls_back_and_stays_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (mut board, _releases) = build(dir.path(), true);
    wait_healthy(&board).await;

    // v1 → v2 (1.1.0, healthy): install, trial, reboot into B, probation, commit.
    let progress = upgrade(&board, Release::Upgrade.version(), false)
        .await
        .unwrap();
    let last = progress.last().expect("progress");
    assert_eq!(
        last.phase,
        pb::UpgradePhase::TrialReady as i32,
        "{progress:?}"
    );
    assert_eq!(last.target_slot, "B");
    let slot = board.reboot(STEP).unwrap();
    assert_eq!(slot.as_str(), "B");
    let deadline = Instant::now() + STEP;
    loop {
        let state = board.boot_state().unwrap();
        if state.status(&slot).unwrap() == skerry_boot_state::SlotStatus::Good {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "B was never committed: {state:?}\n{}",
            board.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // v2 → v3 (1.2.0, boots but its critical check fails): rolled back to B.
    let progress = upgrade(&board, Release::Broken.version(), false)
        .await
        .unwrap();
    assert_eq!(progress.last().unwrap().target_slot, "A");
    assert_eq!(board.reboot(STEP).unwrap().as_str(), "A");
    // Probation fails: the daemon marks A bad and reboots into B.
    assert_eq!(board.reboot(STEP).unwrap().as_str(), "B");
    wait_healthy(&board).await;
    // The history (persisted, read back by the daemon on B) records why.
    let mut reader = board.client(READER).await.unwrap();
    let history = reader
        .resource_list(pb::ResourceListRequest {
            namespace: "upgrade".into(),
            r#type: "UpgradeHistory.upgrade.skerry.dev".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .resources;
    let rolled_back = history
        .iter()
        .find(|r| {
            r.spec_yaml.contains("rolled_back") && r.spec_yaml.contains(Release::Broken.version())
        })
        .unwrap_or_else(|| panic!("no rollback of 1.2.0 in the history: {history:#?}"));
    assert!(
        rolled_back.spec_yaml.contains("app/image"),
        "the reason names the failing check: {}",
        rolled_back.spec_yaml
    );
    // This start's events tell what the daemon found at start.
    let all = events(&board).await;
    assert!(all.iter().any(|e| e.kind == "daemon.started"), "{all:#?}");

    // The release it rolled back from is not installed again unless forced.
    let status = upgrade(&board, Release::Broken.version(), false)
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert!(
        status.message().contains(Release::Broken.version()),
        "{status:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_daemon_on_the_same_root_is_refused_and_touches_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (board, _) = build(dir.path(), false);
    let starts = board.root().join("var/skerry/starts");
    let before = std::fs::read_to_string(&starts).unwrap();
    let mut second = std::process::Command::new(skerryd())
        .arg("--root")
        .arg(board.root())
        .args(["--listen", "127.0.0.1:0"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while second.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            second.kill().unwrap();
            second.wait().unwrap();
            panic!("a second skerryd kept running on the same root");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = second.wait_with_output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("another skerryd already runs"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&starts).unwrap(), before);
    // The first one still answers.
    let mut client = board.client(READER).await.unwrap();
    client.version(pb::VersionRequest {}).await.unwrap();
}
