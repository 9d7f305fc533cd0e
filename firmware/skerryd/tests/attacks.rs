//! The daemon attacked as a hostile client, a hostile config and a damaged disk would:
//! the real skerryd binary on hil-tests' DaemonBoard (or started by hand on its root
//! where the attack is the command line), never a panic, never a hang, and every
//! refusal naming what was wrong.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use skerry_api::pb;
use skerry_hil::{DaemonBoard, DaemonBoardOptions};
use tonic::Code;

const ADMIN: Option<&str> = Some("os:admin");
/// skerryd's limit on follow streams open at once.
const MAX_FOLLOWS: usize = skerryd::api::MAX_FOLLOW_STREAMS;
/// The longest a start that must fail, or a change that must show, is waited for.
const WAIT: Duration = Duration::from_secs(30);

fn skerryd() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_skerryd"))
}

const GOOD_CONFIG: &str = "apiVersion: skerry.dev/v1alpha1
kind: MachineConfig
hostname: edge-good
---
apiVersion: skerry.dev/v1alpha1
kind: ServiceConfig
name: app
command: [sleep, \"3600\"]
";

/// A board whose first start stored `GOOD_CONFIG`, powered off again.
fn configured_board(dir: &Path) -> DaemonBoard {
    let mut board = DaemonBoard::build(
        dir,
        skerryd(),
        DaemonBoardOptions {
            config: Some(GOOD_CONFIG.to_owned()),
            ..DaemonBoardOptions::default()
        },
    )
    .unwrap();
    board.power_on().unwrap();
    wait_for(|| read(&board.root().join("etc/hostname")).contains("edge-good"));
    board.stop().unwrap();
    assert!(
        board.root().join("var/skerry/config/config.json").is_file(),
        "the first start stored the factory config"
    );
    board
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

fn wait_for(mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !ready() {
        assert!(Instant::now() < deadline, "not so within {WAIT:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn fifo(path: &Path) {
    let _ = std::fs::remove_file(path);
    let status = Command::new("mkfifo").arg(path).status().unwrap();
    assert!(status.success(), "mkfifo {}", path.display());
}

/// How a start by hand ended.
#[derive(Debug)]
enum Start {
    /// It exited by itself with this code and stderr.
    Exited(Option<i32>, String),
    /// It served its API (then it was stopped).
    Served,
    /// Neither within [`WAIT`] (then it was killed).
    Hung(String),
}

/// Starts skerryd by hand on `root` (whose run/ is left as the test made it).
fn start_by_hand(root: &Path) -> Start {
    let address = root.join("run/api-address");
    let _ = std::fs::remove_file(&address);
    let log = root.join("../by-hand.log");
    let file = std::fs::File::create(&log).unwrap();
    let mut child = Command::new(skerryd())
        .arg("--root")
        .arg(root)
        .args(["--listen", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Start::Exited(status.code(), read(&log));
        }
        if address.exists() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let _ = child.wait();
            return Start::Served;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Start::Hung(read(&log));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The start fails with a non-zero exit and a message holding every one of `names`.
fn assert_refused(root: &Path, what: &str, names: &[&str]) {
    match start_by_hand(root) {
        Start::Exited(code, log) => {
            assert!(code.is_some_and(|c| c != 0), "{what}: exit {code:?}\n{log}");
            assert!(!log.contains("panicked"), "{what}: a panic\n{log}");
            for name in names {
                assert!(log.contains(name), "{what}: no {name:?} in\n{log}");
            }
        }
        Start::Served => panic!("{what}: the start should fail, it served its API"),
        Start::Hung(log) => panic!("{what}: the start hung for {WAIT:?}:\n{log}"),
    }
}

fn cmdline(root: &Path, slot: &str) {
    std::fs::create_dir_all(root.join("run")).unwrap();
    std::fs::write(root.join("run/cmdline"), format!("skerry.slot={slot}\n")).unwrap();
}

#[test]
fn a_fifo_in_place_of_a_pki_file_is_named_not_waited_on() {
    let dir = tempfile::tempdir().unwrap();
    let board = DaemonBoard::build(dir.path(), skerryd(), DaemonBoardOptions::default()).unwrap();
    let root = board.root().to_owned();
    cmdline(&root, "A");
    for name in ["ca.crt", "node.key"] {
        let path = root.join("pki").join(name);
        let saved = std::fs::read(&path).unwrap();
        fifo(&path);
        assert_refused(&root, name, &[name, "FIFO"]);
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, saved).unwrap();
    }
    assert!(matches!(start_by_hand(&root), Start::Served));
}

/// pki/ca.crt from another `gen secrets` run (same name, another key): the start stops
/// naming both files instead of serving an API no client can reach.
#[test]
fn a_ca_that_did_not_sign_the_node_certificate_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let board = DaemonBoard::build(dir.path(), skerryd(), DaemonBoardOptions::default()).unwrap();
    let root = board.root().to_owned();
    cmdline(&root, "A");
    let other = dir.path().join("other-pki");
    skerry_hil::daemon::Pki::create(&other).unwrap();
    let ca = root.join("pki/ca.crt");
    let ours = std::fs::read(&ca).unwrap();
    std::fs::copy(other.join("ca.crt"), &ca).unwrap();
    assert_refused(
        &root,
        "another CA",
        &["node.crt", "ca.crt", "not signed by the CA"],
    );
    // A bundle that holds the right CA besides another one is fine.
    let mut bundle = std::fs::read(other.join("ca.crt")).unwrap();
    bundle.extend_from_slice(&ours);
    std::fs::write(&ca, bundle).unwrap();
    assert!(matches!(start_by_hand(&root), Start::Served));
}

#[test]
fn a_fifo_in_place_of_the_time_floor_does_not_hang_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let board = DaemonBoard::build(dir.path(), skerryd(), DaemonBoardOptions::default()).unwrap();
    let root = board.root().to_owned();
    cmdline(&root, "A");
    std::fs::create_dir_all(root.join("var/skerry/time")).unwrap();
    fifo(&root.join("var/skerry/time/floor.json"));
    let start = start_by_hand(&root);
    assert!(matches!(start, Start::Served), "{start:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fifo_in_place_of_etc_hosts_is_replaced_not_read() {
    let dir = tempfile::tempdir().unwrap();
    let mut board =
        DaemonBoard::build(dir.path(), skerryd(), DaemonBoardOptions::default()).unwrap();
    std::fs::create_dir_all(board.root().join("etc")).unwrap();
    fifo(&board.root().join("etc/hosts"));
    board.power_on().unwrap();
    let mut client = board.client(ADMIN).await.unwrap();
    client
        .apply_configuration(apply(GOOD_CONFIG.as_bytes(), false))
        .await
        .unwrap();
    let hosts = board.root().join("etc/hosts");
    let deadline = Instant::now() + WAIT;
    while !(std::fs::symlink_metadata(&hosts).is_ok_and(|m| m.is_file())
        && read(&hosts).contains("edge-good"))
    {
        assert!(
            Instant::now() < deadline,
            "etc/hosts was not rendered over the FIFO:\n{}",
            board.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    board.stop().unwrap();
}

#[test]
fn a_command_line_naming_a_slot_the_board_lacks_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let board = DaemonBoard::build(dir.path(), skerryd(), DaemonBoardOptions::default()).unwrap();
    let root = board.root().to_owned();
    cmdline(&root, "Z");
    assert_refused(
        &root,
        "slot Z",
        &["run/cmdline", "\"Z\"", "board.json", "A, B"],
    );
    cmdline(&root, "../x");
    assert_refused(&root, "slot ../x", &["../x"]);
}

/// A file where the daemon needs a directory (etc/, var/skerry/upgrade/): the start
/// stops naming that path.
#[test]
fn a_file_in_place_of_a_directory_stops_the_start_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let board = DaemonBoard::build(dir.path(), skerryd(), DaemonBoardOptions::default()).unwrap();
    let root = board.root().to_owned();
    cmdline(&root, "A");
    for name in ["etc", "var/skerry/upgrade"] {
        let path = root.join(name);
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, "in the way").unwrap();
        let shown = path.display().to_string();
        assert_refused(&root, name, &[&shown]);
        std::fs::remove_file(&path).unwrap();
    }
    assert!(matches!(start_by_hand(&root), Start::Served));
}

/// Each damage to a file the start reads stops it naming the file, and the operator's
/// data is left as it was found.
#[test]
fn every_damaged_file_stops_the_start_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let board = configured_board(dir.path());
    let root = board.root().to_owned();
    cmdline(&root, "A");
    type Damage = fn(&Path);
    let cases: [(&str, &str, Damage); 10] = [
        ("board.json", "directory", |p| {
            std::fs::remove_file(p).unwrap();
            std::fs::create_dir(p).unwrap();
        }),
        ("board.json", "neither a regular file", fifo),
        ("board.json", "more than", |p| {
            std::fs::write(p, vec![b' '; 10 << 20]).unwrap()
        }),
        ("board.json", "not a valid board definition", |p| {
            std::fs::write(p, "{\"name\":").unwrap()
        }),
        ("board.json", "unknown field `colour`", |p| {
            let mut v: serde_json::Value =
                serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap();
            v["colour"] = "red".into();
            std::fs::write(p, v.to_string()).unwrap();
        }),
        ("var/skerry/config/config.json", "not valid", |p| {
            let bytes = std::fs::read(p).unwrap();
            std::fs::write(p, &bytes[..bytes.len() / 2]).unwrap();
        }),
        ("var/skerry/config/config.json", "not valid", |p| {
            std::fs::write(p, b"\xff\xfegarbage").unwrap()
        }),
        ("var/skerry/config/config.json", "newer release", |p| {
            let text = read(p).replace("\"formatVersion\": 1", "\"formatVersion\": 99");
            assert!(text.contains("99"), "{text}");
            std::fs::write(p, text).unwrap();
        }),
        ("var/skerry/config/history.json", "not valid", |p| {
            std::fs::write(p, "zz").unwrap()
        }),
        ("var/skerry/starts", "does not hold a start count", |p| {
            std::fs::write(p, "xyz\n").unwrap()
        }),
    ];
    for (file, says, damage) in cases {
        let path = root.join(file);
        let saved = std::fs::read(&path).unwrap();
        damage(&path);
        let damaged = std::fs::symlink_metadata(&path)
            .ok()
            .filter(|m| m.is_file())
            .map(|_| std::fs::read(&path).unwrap());
        assert_refused(&root, file, &[file, says]);
        if let Some(damaged) = damaged {
            assert_eq!(
                std::fs::read(&path).unwrap(),
                damaged,
                "{file}: the refused start rewrote it"
            );
        }
        if path.is_dir() {
            std::fs::remove_dir(&path).unwrap();
        } else {
            std::fs::remove_file(&path).unwrap();
        }
        std::fs::write(&path, saved).unwrap();
    }
    assert!(matches!(start_by_hand(&root), Start::Served));
}

/// An upgrade history from a newer release is kept as it is: the daemon serves (it must
/// not stay down), refuses to upgrade naming the file, and never overwrites it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgrade_history_from_a_newer_release_is_kept_and_upgrades_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut board = configured_board(dir.path());
    let path = board.root().join("var/skerry/upgrade/history.json");
    for text in [
        "{\"format\":\"skerry.upgrade-history\",\"version\":99,\"body\":{\"entries\":[]}}",
        "{{{ not json",
    ] {
        std::fs::write(&path, text).unwrap();
        board.power_on().unwrap();
        let mut client = board.client(ADMIN).await.unwrap();
        let refused = client
            .upgrade(pb::UpgradeRequest {
                release_version: "2.0.0".into(),
                force: true,
            })
            .await
            .err();
        let version = client.version(pb::VersionRequest {}).await;
        assert!(version.is_ok(), "{version:?}");
        // Without an update source the refusal may be about that; with one it names
        // the history. Either way nothing ran and the file is as it was.
        let refused = refused.expect("an upgrade on an unreadable history is refused");
        assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
        board.stop().unwrap();
        assert_eq!(read(&path), text, "the history was rewritten");
    }
}

fn apply(configuration: &[u8], dry_run: bool) -> pb::ApplyConfigurationRequest {
    pb::ApplyConfigurationRequest {
        configuration: configuration.to_vec(),
        mode: pb::ApplyMode::NoReboot.into(),
        dry_run,
        try_timeout: None,
    }
}

fn header(rest: &str) -> String {
    format!("apiVersion: skerry.dev/v1alpha1\nkind: MachineConfig\n{rest}")
}

fn hostile_configs() -> Vec<(&'static str, Vec<u8>)> {
    let mut bomb =
        header("hostname: edge-bomb\nx0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for i in 1..10 {
        let refs = vec![format!("*a{}", i - 1); 9].join(", ");
        bomb.push_str(&format!("x{i}: &a{i} [{refs}]\n"));
    }
    let services: String = (0..5000)
        .map(|i| {
            format!("---\napiVersion: skerry.dev/v1alpha1\nkind: ServiceConfig\nname: s{i}\ncommand: [sleep, \"1\"]\n")
        })
        .collect();
    let service = |name: &str| {
        format!(
            "{}---\napiVersion: skerry.dev/v1alpha1\nkind: ServiceConfig\nname: {name}\ncommand: [sleep, \"1\"]\n",
            header("hostname: edge-svc\n")
        )
        .into_bytes()
    };
    vec![
        (
            "above MAX_REQUEST_BYTES",
            header(&format!("hostname: e\n# {}\n", "x".repeat(skerry_api::MAX_REQUEST_BYTES))).into_bytes(),
        ),
        (
            "just below MAX_REQUEST_BYTES",
            header(&format!("hostname: e\n# {}\n", "x".repeat(skerry_api::MAX_REQUEST_BYTES - 4096))).into_bytes(),
        ),
        ("alias bomb", bomb.into_bytes()),
        ("deep flow nesting", header(&format!("hostname: {}\n", "[".repeat(100_000))).into_bytes()),
        ("deep block nesting", header(&format!("hostname: e\nidentity: {}\n", "{a: ".repeat(20_000))).into_bytes()),
        ("invalid UTF-8", b"apiVersion: skerry.dev/v1alpha1\nkind: MachineConfig\nhostname: \xff\xfe\n".to_vec()),
        ("thousands of services", format!("{}{services}", header("hostname: e\n")).into_bytes()),
        ("thousands of documents", format!("{}{}", header("hostname: e\n"), "---\n".repeat(60_000)).into_bytes()),
        ("hostname with a newline", header("hostname: \"evil\\n6.6.6.6 bank.example\"\n").into_bytes()),
        ("hostname with ../", header("hostname: \"../../etc/passwd\"\n").into_bytes()),
        ("hostname with NUL", header("hostname: \"a\\0b\"\n").into_bytes()),
        ("service name with ../", service("\"../../x\"")),
        ("service name with a newline", service("\"a\\nb\"")),
        ("service name with NUL", service("\"a\\0b\"")),
        (
            "DNS search with a newline",
            format!("{}---\napiVersion: skerry.dev/v1alpha1\nkind: NetworkConfig\ndns:\n  search: [\"a.example\\nnameserver 6.6.6.6\"]\n", header("hostname: e\n")).into_bytes(),
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_configs_are_refused_and_the_rendered_files_stay_well_formed() {
    let dir = tempfile::tempdir().unwrap();
    let mut board =
        DaemonBoard::build(dir.path(), skerryd(), DaemonBoardOptions::default()).unwrap();
    board.power_on().unwrap();
    let mut client = board.client(ADMIN).await.unwrap();
    client
        .apply_configuration(apply(GOOD_CONFIG.as_bytes(), false))
        .await
        .unwrap();
    let hostname = board.root().join("etc/hostname");
    wait_for(|| read(&hostname) == "edge-good\n");
    for (what, config) in hostile_configs() {
        for dry_run in [true, false] {
            let answer = client.apply_configuration(apply(&config, dry_run)).await;
            // A dry run answers with the problems it found (skerryctl turns them into
            // its error); an apply refuses the call.
            let status = match answer {
                Ok(response) if dry_run => {
                    let response = response.into_inner();
                    assert!(
                        !response.problems.is_empty() && response.unchanged,
                        "{what}: a dry run found no problem: {response:?}"
                    );
                    continue;
                }
                Ok(response) => panic!("{what}: applied: {response:?}"),
                Err(status) => status,
            };
            assert!(
                matches!(
                    status.code(),
                    Code::InvalidArgument | Code::ResourceExhausted | Code::OutOfRange
                ),
                "{what}: {status:?}"
            );
            assert!(!status.message().is_empty(), "{what}: no message");
            let version = client.version(pb::VersionRequest {}).await;
            assert!(version.is_ok(), "{what}: Version after it: {version:?}");
        }
    }
    assert_eq!(read(&hostname), "edge-good\n");
    let hosts = read(&board.root().join("etc/hosts"));
    for line in hosts
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let mut fields = line.split_whitespace();
        let address = fields.next().unwrap();
        assert!(
            address.parse::<std::net::IpAddr>().is_ok(),
            "{line:?} in\n{hosts}"
        );
        for name in fields {
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.'),
                "{line:?} in\n{hosts}"
            );
        }
    }
    assert!(hosts.contains("edge-good"), "{hosts}");
    assert!(!board.logs().contains("panicked"), "{}", board.logs());
    board.stop().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_ids_are_invalid_argument_or_not_found_never_internal() {
    let dir = tempfile::tempdir().unwrap();
    let mut board =
        DaemonBoard::build(dir.path(), skerryd(), DaemonBoardOptions::default()).unwrap();
    board.power_on().unwrap();
    let mut client = board.client(ADMIN).await.unwrap();
    let fine = |code: Code| {
        matches!(
            code,
            Code::InvalidArgument | Code::NotFound | Code::OutOfRange
        )
    };
    for id in [
        "x".repeat(900_000),
        "a\0b".into(),
        "../../etc/passwd".into(),
        "a/b".into(),
        String::new(),
    ] {
        let get = client
            .resource_get(pb::ResourceGetRequest {
                r#ref: Some(pb::ResourceRef {
                    namespace: "config".into(),
                    r#type: "MachineConfigs.config.skerry.dev".into(),
                    id: id.clone(),
                }),
            })
            .await;
        if let Err(status) = &get {
            assert!(fine(status.code()), "ResourceGet {:.40}: {status:?}", id);
        }
        let start = client
            .service_start(pb::ServiceStartRequest { id: id.clone() })
            .await
            .expect_err("no such service");
        assert!(fine(start.code()), "ServiceStart {:.40}: {start:?}", id);
        let events = client
            .events(pb::EventsRequest {
                after_id: id.clone(),
                watch: false,
            })
            .await;
        if let Err(status) = &events {
            assert!(fine(status.code()), "Events after {:.40}: {status:?}", id);
        }
    }
    for after_id in [
        "00000001-000000000000",
        "00000000-000000000000",
        "99999999-999999999999",
        "00000001-",
        "-000000000001",
        "00000001-00000000000a",
        "00000001-0000000000001",
        "+0000001-000000000001",
        "ffffffff-ffffffffffff",
    ] {
        let answer = client
            .events(pb::EventsRequest {
                after_id: after_id.into(),
                watch: false,
            })
            .await;
        match answer {
            Ok(stream) => {
                let mut stream = stream.into_inner();
                while let Some(item) = stream.message().await.transpose() {
                    if let Err(status) = item {
                        assert!(fine(status.code()), "Events after {after_id}: {status:?}");
                        break;
                    }
                }
            }
            Err(status) => assert!(fine(status.code()), "Events after {after_id}: {status:?}"),
        }
    }
    assert!(client.version(pb::VersionRequest {}).await.is_ok());
    board.stop().unwrap();
}

fn rss_kib(pid: u32) -> u64 {
    let status = read(&PathBuf::from(format!("/proc/{pid}/status")));
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Hundreds of follow calls, never read, while events keep coming: MAX_FOLLOW_STREAMS
/// open and the rest are RESOURCE_EXHAUSTED naming the limit, Version still answers,
/// the daemon's memory stays within a generous bound, and closed streams free their
/// places.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundreds_of_unread_follow_streams_leave_the_daemon_answering() {
    let dir = tempfile::tempdir().unwrap();
    let mut board =
        DaemonBoard::build(dir.path(), skerryd(), DaemonBoardOptions::default()).unwrap();
    board.power_on().unwrap();
    let mut admin = board.client(ADMIN).await.unwrap();
    admin
        .apply_configuration(apply(GOOD_CONFIG.as_bytes(), false))
        .await
        .unwrap();
    let mut held = Vec::new();
    let mut clients = Vec::new();
    let mut refused = 0;
    // Several connections: one carries at most MAX_STREAMS_PER_CONNECTION calls.
    for _ in 0..6 {
        let client = board.client(ADMIN).await.unwrap();
        for i in 0..50 {
            let mut c = client.clone();
            let stream = match i % 3 {
                0 => c
                    .events(pb::EventsRequest {
                        after_id: String::new(),
                        watch: true,
                    })
                    .await
                    .map(|s| Box::new(s.into_inner()) as Box<dyn std::any::Any + Send>),
                1 => c
                    .resource_watch(pb::ResourceWatchRequest {
                        namespace: "config".into(),
                        r#type: "MachineConfigs.config.skerry.dev".into(),
                        id: String::new(),
                        bootstrap: true,
                    })
                    .await
                    .map(|s| Box::new(s.into_inner()) as Box<dyn std::any::Any + Send>),
                _ => c
                    .logs(pb::LogsRequest {
                        service_id: "app".into(),
                        follow: true,
                        tail_lines: 0,
                    })
                    .await
                    .map(|s| Box::new(s.into_inner()) as Box<dyn std::any::Any + Send>),
            };
            match stream {
                Ok(stream) => held.push(stream),
                Err(status) => {
                    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
                    assert!(
                        status.message().contains(&MAX_FOLLOWS.to_string()),
                        "{status:?}"
                    );
                    refused += 1;
                }
            }
        }
        clients.push(client);
    }
    assert_eq!(held.len(), MAX_FOLLOWS, "streams opened");
    assert_eq!(refused, 300 - MAX_FOLLOWS, "streams refused");
    let pid = board.pid().unwrap();
    let before = rss_kib(pid);
    // Events and resource changes nobody reads: configs applied again and again.
    for i in 0..200 {
        let config = GOOD_CONFIG.replace("edge-good", &format!("edge-{i}"));
        admin
            .apply_configuration(apply(config.as_bytes(), false))
            .await
            .unwrap();
        let version = tokio::time::timeout(WAIT, admin.version(pb::VersionRequest {})).await;
        assert!(
            matches!(version, Ok(Ok(_))),
            "Version did not answer: {version:?}"
        );
    }
    let after = rss_kib(pid);
    assert!(
        after < before + 128 * 1024,
        "RSS grew from {before} KiB to {after} KiB with unread streams"
    );
    drop(held);
    drop(clients);
    let version = tokio::time::timeout(WAIT, admin.version(pb::VersionRequest {})).await;
    assert!(matches!(version, Ok(Ok(_))), "{version:?}");
    // The permits come back with the streams: a new follow opens.
    let deadline = Instant::now() + WAIT;
    loop {
        let opened = admin
            .events(pb::EventsRequest {
                after_id: String::new(),
                watch: true,
            })
            .await;
        match opened {
            Ok(_) => break,
            Err(status) if status.code() == Code::ResourceExhausted => {
                assert!(Instant::now() < deadline, "{status:?}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(status) => panic!("{status:?}"),
        }
    }
    board.stop().unwrap();
}

/// Reboot, Shutdown and Rollback calls in parallel: the daemon stops once, in order
/// (exit 0), with one power request, and powers on again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_of_power_calls_stops_the_daemon_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut board =
        DaemonBoard::build(dir.path(), skerryd(), DaemonBoardOptions::default()).unwrap();
    board.power_on().unwrap();
    let client = board.client(ADMIN).await.unwrap();
    let mut calls = Vec::new();
    for i in 0..60 {
        let mut c = client.clone();
        calls.push(tokio::spawn(async move {
            match i % 3 {
                0 => c.reboot(pb::RebootRequest {}).await.map(|_| ()),
                1 => c
                    .rollback(pb::RollbackRequest {
                        reason: "storm".into(),
                    })
                    .await
                    .map(|_| ()),
                _ => c.shutdown(pb::ShutdownRequest {}).await.map(|_| ()),
            }
        }));
    }
    // Calls that reach a daemon already stopping may see the connection close (the
    // machine is going down); none is answered as an internal failure.
    for call in calls {
        if let Err(status) = call.await.unwrap() {
            assert!(status.code() != Code::Internal, "{status:?}");
        }
    }
    let request = tokio::task::block_in_place(|| board.wait_for_power_request(WAIT)).unwrap();
    assert!(request == "reboot" || request == "shutdown", "{request}");
    assert!(!board.logs().contains("panicked"), "{}", board.logs());
    tokio::task::block_in_place(|| board.power_on()).unwrap();
    let mut client = board.client(ADMIN).await.unwrap();
    assert!(client.version(pb::VersionRequest {}).await.is_ok());
    board.stop().unwrap();
}

/// Upgrade calls in parallel: one runs (to TRIAL_READY and its reboot), every other one
/// is refused as FAILED_PRECONDITION, and the history records one install.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_upgrades_run_one_at_a_time() {
    use skerry_hil::updates::{Release, SignedReleases, BOARD};
    let dir = tempfile::tempdir().unwrap();
    let mut board =
        DaemonBoard::build(dir.path(), skerryd(), DaemonBoardOptions::default()).unwrap();
    let releases_dir = dir.path().join("releases");
    let releases = SignedReleases::publish(&releases_dir, &skerry_hil::images::factory()).unwrap();
    let root_file = releases_dir.join("trusted-root.json");
    std::fs::write(&root_file, releases.trusted_root()).unwrap();
    let config = format!(
        "{GOOD_CONFIG}---
apiVersion: skerry.dev/v1alpha1
kind: UpdateConfig
repository: file://{repo}
trustedRoot: {root}
board: {BOARD}
channel: stable
probation: 4s
",
        repo = releases.repo_dir().display(),
        root = root_file.display(),
    );
    std::fs::write(board.root().join("config.yaml"), config).unwrap();
    board.power_on().unwrap();
    let client = board.client(ADMIN).await.unwrap();
    let mut calls = Vec::new();
    for _ in 0..16 {
        let mut c = client.clone();
        calls.push(tokio::spawn(async move {
            let mut stream = c
                .upgrade(pb::UpgradeRequest {
                    release_version: Release::Upgrade.version().into(),
                    force: false,
                })
                .await?
                .into_inner();
            let mut last = None;
            while let Some(progress) = stream.message().await? {
                last = Some(progress.phase);
            }
            Ok::<_, tonic::Status>(last)
        }));
    }
    let mut ran = 0;
    for call in calls {
        match call.await.unwrap() {
            Ok(last) => {
                ran += 1;
                assert_eq!(last, Some(pb::UpgradePhase::TrialReady.into()));
            }
            Err(status) => {
                assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
                assert!(
                    status.message().contains("already running")
                        || status.message().contains("on trial"),
                    "{status:?}"
                );
            }
        }
    }
    assert_eq!(ran, 1, "{ran} upgrades ran");
    let request = tokio::task::block_in_place(|| board.wait_for_power_request(WAIT * 4)).unwrap();
    assert!(request.starts_with("reboot"), "{request}");
    let history = read(&board.root().join("var/skerry/upgrade/history.json"));
    assert_eq!(
        history.matches("install_started").count(),
        1,
        "one install in the history:\n{history}"
    );
}

/// Numbers at and past their ends: a try timeout of i64::MAX or negative, an unknown
/// apply mode, the largest tail and generation. Each is refused (or answered) without
/// an internal failure, and the daemon keeps answering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn numbers_past_their_ends_are_refused_not_overflowed() {
    let dir = tempfile::tempdir().unwrap();
    let mut board =
        DaemonBoard::build(dir.path(), skerryd(), DaemonBoardOptions::default()).unwrap();
    board.power_on().unwrap();
    let mut client = board.client(ADMIN).await.unwrap();
    let not_internal = |what: &str, status: &tonic::Status| {
        assert!(
            !matches!(status.code(), Code::Internal | Code::Unknown),
            "{what}: {status:?}"
        );
    };
    for (seconds, nanos) in [
        (i64::MAX, 999_999_999),
        (-5, 0),
        (0, -1),
        (i64::MIN, 0),
        (1, i32::MAX),
    ] {
        let mut request = apply(GOOD_CONFIG.as_bytes(), false);
        request.mode = pb::ApplyMode::Try.into();
        request.try_timeout = Some(prost_types::Duration { seconds, nanos });
        let status = client
            .apply_configuration(request)
            .await
            .expect_err("out of range");
        assert_eq!(
            status.code(),
            Code::InvalidArgument,
            "{seconds}s {nanos}ns: {status:?}"
        );
    }
    let mut request = apply(GOOD_CONFIG.as_bytes(), false);
    request.mode = 99;
    let status = client
        .apply_configuration(request)
        .await
        .expect_err("mode 99");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let status = client
        .confirm_configuration(pb::ConfirmConfigurationRequest {
            generation: u64::MAX,
        })
        .await
        .expect_err("nothing on try");
    not_internal("ConfirmConfiguration", &status);
    let status = client
        .logs(pb::LogsRequest {
            service_id: "app".into(),
            follow: false,
            tail_lines: u32::MAX,
        })
        .await
        .expect_err("tail past its limit");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    for release_version in [
        "../../etc/passwd",
        "1.0.0\n",
        "99999999999999999999.0.0",
        "",
    ] {
        if let Err(status) = client
            .upgrade(pb::UpgradeRequest {
                release_version: release_version.into(),
                force: true,
            })
            .await
        {
            not_internal(release_version, &status);
        }
    }
    let status = client
        .rollback(pb::RollbackRequest {
            reason: "r".repeat(2000),
        })
        .await
        .expect_err("a reason past its limit");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(client.version(pb::VersionRequest {}).await.is_ok());
    assert!(!board.logs().contains("panicked"), "{}", board.logs());
    board.stop().unwrap();
}

/// The runtime's state log cut mid-record (a torn last write) is recovered from: the
/// daemon starts. A log whose header itself is not a state log's is refused by name.
#[test]
fn a_torn_state_log_tail_is_recovered_and_a_foreign_log_refused() {
    let dir = tempfile::tempdir().unwrap();
    let board = configured_board(dir.path());
    let root = board.root().to_owned();
    cmdline(&root, "A");
    let log = root.join("var/skerry/state/state.log");
    let intact = std::fs::read(&log).unwrap();
    let mut torn = intact.clone();
    torn.extend_from_slice(&[0, 0, 0, 40, b'{', b'"']);
    std::fs::write(&log, &torn).unwrap();
    let start = start_by_hand(&root);
    assert!(matches!(start, Start::Served), "{start:?}");
    std::fs::write(&log, b"NOT A LOG AT ALL\n").unwrap();
    assert_refused(
        &root,
        "foreign log",
        &["state.log", "not a Skerry state log"],
    );
    std::fs::write(&log, &intact).unwrap();
    assert!(matches!(start_by_hand(&root), Start::Served));
}

/// A chatty service and hundreds of Logs follow calls nobody reads: each open stream
/// holds what HTTP/2 buffers for it (about 300 KiB here; 480 such streams took the
/// daemon from 29 MiB to 178 MiB before the limit), so only MAX_FOLLOW_STREAMS open and
/// the daemon's memory stays bounded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unread_log_follows_of_a_chatty_service_stay_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let mut board =
        DaemonBoard::build(dir.path(), skerryd(), DaemonBoardOptions::default()).unwrap();
    board.power_on().unwrap();
    let mut admin = board.client(ADMIN).await.unwrap();
    let chatty = "apiVersion: skerry.dev/v1alpha1
kind: MachineConfig
hostname: edge-chatty
---
apiVersion: skerry.dev/v1alpha1
kind: ServiceConfig
name: chatty
command: [sh, -c, \"while :; do echo 0123456789012345678901234567890123456789012345678901234567890123456789; done\"]
";
    admin
        .apply_configuration(apply(chatty.as_bytes(), false))
        .await
        .unwrap();
    let pid = board.pid().unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = rss_kib(pid);
    let mut held = Vec::new();
    for _ in 0..8 {
        let client = board.client(ADMIN).await.unwrap();
        for _ in 0..60 {
            let mut c = client.clone();
            if let Ok(stream) = c
                .logs(pb::LogsRequest {
                    service_id: "chatty".into(),
                    follow: true,
                    tail_lines: 0,
                })
                .await
            {
                held.push(stream.into_inner());
            }
        }
    }
    assert_eq!(held.len(), MAX_FOLLOWS, "streams opened");
    tokio::time::sleep(Duration::from_secs(8)).await;
    let version = tokio::time::timeout(WAIT, admin.version(pb::VersionRequest {})).await;
    assert!(matches!(version, Ok(Ok(_))), "{version:?}");
    let after = rss_kib(pid);
    eprintln!(
        "RSS {before} KiB -> {after} KiB with {} unread follows",
        held.len()
    );
    assert!(
        after < before + 64 * 1024,
        "RSS grew from {before} KiB to {after} KiB with unread log follows"
    );
    drop(held);
    board.stop().unwrap();
}
