//! The console log and events reaching the server (`skerry.logs=`, `skerry.events=`),
//! with the real `skerryd --root` (a `DaemonBoard`) and the real `skerry-server
//! --tls-listen`: a daemon that cannot even open its machine still tells the server
//! why; a running one ships its lines and events, keeps them while the server is down
//! and sends them once it is back, by its join token before it enrolls and by its
//! certificate after.

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use skerry_hil::{DaemonBoard, DaemonBoardOptions};
use support::{binaries, cli, Server};

/// The kernel arguments `token create --url` printed: join, logs, events.
fn kernel_args(bin: &Path, data: &Path, tls: SocketAddr) -> Vec<String> {
    let printed = support::token_create(bin, data, tls);
    let args: Vec<String> = printed
        .lines()
        .filter(|l| l.starts_with("skerry."))
        .map(str::to_owned)
        .collect();
    for key in ["skerry.join=", "skerry.logs=", "skerry.events="] {
        assert!(
            args.iter().any(|a| a.starts_with(key)),
            "no {key} in {printed}"
        );
    }
    args
}

/// What the server kept for `device` (`--events` for the events).
fn kept(bin: &Path, data: &Path, device: &str, events: bool) -> String {
    let mut args = vec!["device", "logs", device];
    if events {
        args.push("--events");
    }
    cli(bin, data, &args)
}

/// Waits (at most 90 s) until the server keeps for `device` what `done` wants.
fn wait_kept(
    bin: &Path,
    data: &Path,
    device: &str,
    events: bool,
    what: &str,
    board: &DaemonBoard,
    done: impl Fn(&str) -> bool,
) -> String {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let text = kept(bin, data, device, events);
        if done(&text) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: the server kept for {device}:\n{text}\nthe daemon's log:\n{}",
            board.logs()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn config(hostname: &str) -> String {
    format!("apiVersion: skerry.dev/v1alpha1\nkind: MachineConfig\nhostname: {hostname}\n")
}

#[test]
fn a_daemon_that_cannot_open_its_machine_still_tells_the_server_why() {
    let (server_bin, skerryd) = binaries();
    let tmp = tempfile::tempdir().unwrap();
    let (server, tls) = Server::start(&server_bin, tmp.path());
    let args = kernel_args(&server_bin, &server.data, tls);
    let options = DaemonBoardOptions {
        config: Some(config("dev-7")),
        // Only the sinks: no enrollment, so the lines go by the join token.
        kernel_args: args
            .into_iter()
            .filter(|a| !a.starts_with("skerry.join="))
            .collect(),
        ..DaemonBoardOptions::default()
    };
    let mut board = DaemonBoard::build(&tmp.path().join("board"), &skerryd, options).unwrap();
    std::fs::write(board.root().join("board.json"), "{ not a board").unwrap();
    let failed = board.power_on().unwrap_err().to_string();
    assert!(failed.contains("board.json"), "{failed}");

    // The config was never read: the device names itself by the kernel's host name.
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let device = skerryd_fleet::ship::shipper::device_id(&hostname);
    let lines = kept(&server_bin, &server.data, &device, false);
    assert!(
        lines
            .lines()
            .any(|l| l.contains("ERROR") && l.contains("board.json")),
        "the console log kept for {device}:\n{lines}\nserver:\n{}",
        server.log()
    );
    let events = kept(&server_bin, &server.data, &device, true);
    let failure = events
        .lines()
        .find(|l| l.contains("\"daemon.failed\""))
        .unwrap_or_else(|| panic!("no daemon.failed event for {device}:\n{events}"));
    assert!(failure.contains("board.json"), "{failure}");
}

#[test]
fn a_running_daemon_keeps_its_lines_while_the_server_is_down_then_ships_them_by_token_and_by_certificate(
) {
    let (server_bin, skerryd) = binaries();
    let tmp = tempfile::tempdir().unwrap();
    let tls = support::free_addr();
    // The operator makes the token while the server runs, then the server goes down.
    let server = Server::start_at(&server_bin, tmp.path(), tls);
    let data = server.data.clone();
    let args = kernel_args(&server_bin, &data, tls);
    drop(server);

    let options = DaemonBoardOptions {
        config: Some(config("dev-8")),
        kernel_args: args,
        ..DaemonBoardOptions::default()
    };
    let mut board = DaemonBoard::build(&tmp.path().join("board"), &skerryd, options).unwrap();
    board.power_on().unwrap();
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(kept(&server_bin, &data, "dev-8", false), "");

    let server = Server::start_at(&server_bin, tmp.path(), tls);
    let lines = wait_kept(
        &server_bin,
        &data,
        "dev-8",
        false,
        "the first start's log",
        &board,
        |t| t.contains("skerryd ready"),
    );
    // The lines from before the server came back are there, in order.
    let started = lines.find("starting").or_else(|| lines.find("skerryd"));
    assert!(
        started.is_some() && started < lines.find("skerryd ready"),
        "{lines}"
    );
    wait_kept(
        &server_bin,
        &data,
        "dev-8",
        true,
        "the first start's events",
        &board,
        |t| t.contains("\"daemon.started\""),
    );

    // It enrolls by the join URL; from then on only its certificate may carry its log.
    let identity = board.root().join("var/skerry/fleet/identity/device.crt");
    let deadline = Instant::now() + Duration::from_secs(90);
    while !identity.exists() {
        assert!(
            Instant::now() < deadline,
            "dev-8 did not enroll:\n{}\nserver:\n{}",
            board.logs(),
            server.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    board.stop().unwrap();
    board.power_on().unwrap();
    let events = wait_kept(
        &server_bin,
        &data,
        "dev-8",
        true,
        "the second start's events",
        &board,
        |t| t.matches("\"daemon.started\"").count() == 2,
    );
    assert!(events.contains("\"start\":\"2\""), "{events}");
    let lines = wait_kept(
        &server_bin,
        &data,
        "dev-8",
        false,
        "the second start's log",
        &board,
        |t| t.matches("skerryd ready").count() == 2,
    );
    assert!(lines.contains("enrolled with the fleet server"), "{lines}");
    assert!(server.cli(&["token", "list"]).contains("used 1/1"));
    board.stop().unwrap();
}
