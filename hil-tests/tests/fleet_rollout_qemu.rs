//! The fleet rollout on the QEMU board (issue 11, "the same rollout also drives the QEMU
//! board … enrolled by a join token on its kernel command line … through a real reboot
//! into v2"): the real `skerry-server` on the host with its TLS port; a join token made
//! with `skerry-server token create --url`; the board's disk with that join URL in its
//! boot environment (`skerryctl boot set-device-args`); the guest's skerryd (PID 1)
//! enrolls at first boot, checks in over mutual TLS (the server refuses devices on its
//! plaintext port), is offered 2.0.0 by a rollout created through `/api/v1`, downloads
//! it from the server's `/repository`, installs it into slot B, reboots through GRUB into
//! B, passes probation and commits; the server's timeline for the device holds every step.
//!
//! Slow by nature (TCG): two image builds and two boots, about 4 minutes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use skerry_hil::fleet::qemu::{QemuFleetServer, GUEST_REPOSITORY_URL};
use skerry_hil::fleet::story::timeline_steps;
use skerry_hil::fleet::FleetBinaries;
use skerry_hil::qemu::files::need_tool;
use skerry_hil::rig::qemu::artifacts::static_programs;
use skerry_hil::rig::qemu::{QemuReleases, Site, BOARD_DEFINITION};
use skerry_hil::rig::{Board, ReleaseFactory, ReleaseProperty, ReleaseRequest};

/// A boot under TCG on a loaded machine.
const BOOT: Duration = Duration::from_secs(300);
/// From the rollout's creation to the reboot into B: a check-in (5 s), the download and
/// install of a whole slot.
const INSTALL: Duration = Duration::from_secs(600);
/// From B running to the committed report: probation (20 s) and a check-in.
const COMMIT: Duration = Duration::from_secs(180);

/// Polls `what` on the server every second (keeping the board's console read) until
/// `done` holds for its answer.
fn wait_for<T: std::fmt::Debug>(
    board: &mut dyn Board,
    limit: Duration,
    what: &str,
    mut fetch: impl FnMut() -> anyhow::Result<T>,
    done: impl Fn(&T) -> bool,
) -> T {
    let deadline = Instant::now() + limit;
    let mut last = None;
    while Instant::now() < deadline {
        board.poll().unwrap();
        if let Ok(v) = fetch() {
            if done(&v) {
                return v;
            }
            last = Some(v);
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    let tail: String = {
        let t = board.transcript();
        let start = t.len().saturating_sub(6000);
        let start = (start..t.len())
            .find(|&i| t.is_char_boundary(i))
            .unwrap_or(t.len());
        t[start..].to_owned()
    };
    panic!("{what} not within {limit:?}; last answer: {last:#?}\nconsole tail:\n{tail}");
}

#[test]
fn the_qemu_board_enrolled_by_its_join_url_is_rolled_out_to_2_0_0_through_a_reboot() {
    need_tool(
        "qemu-system-x86_64",
        "qemu-system-x86 (from bookworm-backports)",
    )
    .unwrap();
    let bins = FleetBinaries::locate().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let programs = static_programs().unwrap();
    let first = semver::Version::new(1, 0, 0);
    let site = Arc::new(
        Site::provision_for(
            &dir.path().join("site"),
            programs,
            &first,
            GUEST_REPOSITORY_URL,
        )
        .unwrap(),
    );
    let mut releases = QemuReleases::new(&site).unwrap();
    releases
        .publish(&ReleaseRequest {
            version: semver::Version::new(2, 0, 0),
            property: ReleaseProperty::Good,
        })
        .unwrap();
    let log = dir.path().join("server.log");
    let fleet = QemuFleetServer::start(
        &bins.server,
        &dir.path().join("data"),
        &releases,
        Duration::from_secs(5),
        &log,
    )
    .unwrap();
    let args = fleet.device_arguments(&bins.server).unwrap();
    println!("device arguments: {args}");
    let mut board = fleet.board(&site, &programs.skerryctl, &args).unwrap();
    let server = &fleet.server;

    board.power_on().unwrap();
    assert_eq!(board.wait_running(BOOT).unwrap(), "A");
    // The factory config names no fleet server: the device can only have found the
    // server through the join URL on its kernel command line, and with --tls-listen the
    // server takes no device's check-in on its plaintext port.
    let devices = wait_for(
        &mut board,
        Duration::from_secs(120),
        "the device enrolled and checked in",
        || server.get("devices"),
        |v| v["devices"].as_array().is_some_and(|d| !d.is_empty()),
    );
    let id = devices["devices"][0]["id"]
        .as_str()
        .expect("a device id")
        .to_owned();
    println!("enrolled as {id}");
    let tokens = std::process::Command::new(&bins.server)
        .arg("--data")
        .arg(server.data())
        .args(["token", "list"])
        .output()
        .unwrap();
    let tokens = String::from_utf8_lossy(&tokens.stdout).into_owned();
    println!("tokens:\n{tokens}");
    assert!(
        tokens.contains(" used 1/1 "),
        "the join token was not spent: {tokens}"
    );

    server
        .post(
            "rollouts",
            &json!({"id": "v2", "board": BOARD_DEFINITION, "version": "2.0.0",
                    "channel": "stable", "waves": "0:100%", "max_bad": "20%",
                    "min_sample": 1}),
        )
        .unwrap();
    board.expect_console("SKERRY-BOOT slot=B", INSTALL).unwrap();
    assert_eq!(board.wait_running(BOOT).unwrap(), "B");
    let device = wait_for(
        &mut board,
        COMMIT,
        "the committed report",
        || server.device(&id),
        |v| timeline_steps(v).last().map(String::as_str) == Some("committed"),
    );
    println!("{device:#}");
    assert_eq!(
        timeline_steps(&device),
        [
            "downloading",
            "installed",
            "rebooting",
            "probation",
            "committed"
        ],
        "{device}"
    );
    assert_eq!(device["version"], "2.0.0", "{device}");
    let rollout = server.rollout("v2").unwrap();
    assert_eq!(rollout["waves"][0]["committed"], 1, "{rollout}");
    // Its console log reached the server from both boots (`skerry.logs=`), over the
    // same forwarded TLS port: by the join token at first, by its certificate after;
    // and its events (`skerry.events=`), the upgrade's phases among them. Both sinks
    // were given in the short form, beside the join URL.
    let console = wait_for(
        &mut board,
        Duration::from_secs(60),
        "the console log of both boots on the server",
        || fleet.device_log(&bins.server, &id, false),
        |text| text.matches("skerryd ready").count() >= 2,
    );
    assert!(
        console.contains("enrolled with the fleet server"),
        "{console}"
    );
    let events = wait_for(
        &mut board,
        Duration::from_secs(60),
        "the device's upgrade events on the server",
        || fleet.device_log(&bins.server, &id, true),
        |text| text.contains("upgrade.phase"),
    );
    assert!(events.contains("\"kind\""), "{events}");
}
