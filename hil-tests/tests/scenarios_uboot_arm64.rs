//! Every scenario file on the arm64 U-Boot board (`qemu-arm64-uboot`: QEMU's arm64
//! `virt` machine under TCG, Debian's `qemu_arm64` U-Boot with its environment in
//! flash, our boot script, busybox guests, i6300esb), through the same runner as the
//! other boards: the kernel-panic and kernel-hang fallbacks pass, every scenario that
//! needs skerryd is reported not applicable with its reason. Before that, the board's
//! own mechanics: an install cut short by a power cut leaves the old slot booting, and
//! a whole install begins the trial in an environment `fw_printenv` reads; and
//! `skerry-scenarios --board qemu-arm64-uboot` prints the same table.
//!
//! Needs `scripts/deps/arm64-guest.sh` (the pinned arm64 kernel and busybox .debs).
//! About 2 minutes: each arm64 boot is 3–5 s, each watchdog cycle about 5 s more.

use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use skerry_boot_state::{SlotName, SlotStatus};
use skerry_hil::plan::{self, Verdict};
use skerry_hil::qemu::files::{need_tool, run_tool};
use skerry_hil::rig::uboot_arm64::{publish, Arm64Site, UbootArm64Board};
use skerry_hil::rig::{Board, BoardEvent, ReleaseProperty};

/// One QEMU at a time: two cores, and each guest wants one.
static ONE_MACHINE: Mutex<()> = Mutex::new(());

fn one_machine() -> MutexGuard<'static, ()> {
    ONE_MACHINE.lock().unwrap_or_else(|p| p.into_inner())
}

const BOOT: Duration = Duration::from_secs(120);

fn site(dir: &Path) -> Arc<Arm64Site> {
    Arc::new(Arm64Site::provision(dir, &semver::Version::new(1, 0, 0)).unwrap())
}

fn v(text: &str) -> semver::Version {
    semver::Version::parse(text).unwrap()
}

#[test]
fn an_install_cut_short_boots_the_old_slot_and_a_whole_one_begins_the_trial() {
    let _one = one_machine();
    let dir = tempfile::tempdir().unwrap();
    let site = site(dir.path());
    let mut board = UbootArm64Board::from_site(&site).unwrap();
    board.power_on().unwrap();
    assert_eq!(board.wait_running(BOOT).unwrap(), "A");
    let release = publish(&mut board, v("1.1.0"), ReleaseProperty::Good).unwrap();

    // The power goes 64 KiB into writing slot B: the trial never began.
    board.power_cut().unwrap();
    let slot = board.install_interrupted(&release, 64 << 10).unwrap();
    assert_eq!(slot, "B");
    let before = board.flash().load().unwrap();
    board.power_on().unwrap();
    assert_eq!(board.wait_running(BOOT).unwrap(), "A");
    let transcript = board.transcript();
    assert!(
        !transcript.contains("SKERRY-BOOT slot=B"),
        "the half-written slot was started:\n{transcript}"
    );
    assert_eq!(board.flash().load().unwrap(), before, "nothing was saved");

    // The whole install: the trial is in the environment as the real tool reads it.
    board.power_cut().unwrap();
    board.install_host_side(&release).unwrap();
    need_tool("fw_printenv", "libubootenv-tool").unwrap();
    let config = dir.path().join("fw_env.config");
    std::fs::write(&config, board.flash().fw_env_config()).unwrap();
    let out = run_tool(Command::new("fw_printenv").arg("-c").arg(&config).args([
        "BOOT_ORDER",
        "BOOT_B_LEFT",
        "SKERRY_B_TRIAL",
    ]))
    .unwrap();
    let printed = String::from_utf8(out).unwrap();
    assert_eq!(
        printed, "BOOT_ORDER=B A\nBOOT_B_LEFT=3\nSKERRY_B_TRIAL=1\n",
        "fw_printenv"
    );

    // U-Boot takes an attempt, saves it, and starts the new slot.
    board.power_on().unwrap();
    assert_eq!(board.wait_running(BOOT).unwrap(), "B");
    let view = board.boot_view().unwrap().unwrap();
    assert_eq!(view.running.as_ref().unwrap().version, "1.1.0");
    let b = SlotName::new("B").unwrap();
    assert_eq!(
        view.state.status(&b).unwrap(),
        SlotStatus::Trial { tries_left: 2 }
    );
    board.shut_down().unwrap();
}

#[test]
fn applicable_scenarios_pass_and_the_others_are_not_applicable_with_a_reason() {
    let _one = one_machine();
    let dir = tempfile::tempdir().unwrap();
    let site = site(dir.path());
    let scenarios = plan::load_dir(Path::new(plan::SCENARIO_DIR)).unwrap();
    let mut reports = Vec::new();
    for (_, scenario) in &scenarios {
        let mut board = UbootArm64Board::from_site(&site).unwrap();
        let report = plan::run(scenario, &mut board);
        println!("{}", plan::steps_text(&report));
        // What reset the machine: the panics' own resets, the hangs' watchdog.
        let events = board.take_events();
        let count = |e: BoardEvent| events.iter().filter(|x| **x == e).count();
        match scenario.name.as_str() {
            "kernel-panic-fallback" => assert!(
                count(BoardEvent::Reset) >= 3 && count(BoardEvent::WatchdogReset) == 0,
                "{events:?}"
            ),
            "kernel-hang-watchdog-fallback" => {
                assert_eq!(count(BoardEvent::WatchdogReset), 3, "{events:?}")
            }
            _ => {}
        }
        reports.push(report);
    }
    println!("{}", plan::table(&reports));

    let must_pass = ["kernel-panic-fallback", "kernel-hang-watchdog-fallback"];
    // What each other scenario lacks on this board.
    let not_applicable: &[(&str, &str)] = &[
        ("happy-upgrade", "needs skerryd"),
        ("bad-signature", "needs skerryd"),
        ("power-cut-mid-install", "needs skerryd"),
        (
            "health-check-rollback",
            "needs failing_health_check, skerryd",
        ),
        ("daemon-hang-watchdog", "needs skerryd, hang_daemon"),
        ("repository-unreachable-resume", "needs skerryd"),
    ];
    let mut problems = Vec::new();
    for report in &reports {
        let expected = if must_pass.contains(&report.scenario.as_str()) {
            Verdict::Passed
        } else {
            match not_applicable.iter().find(|(s, _)| *s == report.scenario) {
                Some((_, why)) => Verdict::NotApplicable((*why).into()),
                None => {
                    problems.push(format!(
                        "{}: a scenario this test does not know",
                        report.scenario
                    ));
                    continue;
                }
            }
        };
        if report.verdict != expected {
            problems.push(format!(
                "expected {expected}\n{}{}",
                plan::steps_text(report),
                report.transcript.as_deref().unwrap_or("")
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // The fallbacks spent every attempt of the trial before U-Boot fell back.
    for name in must_pass {
        let report = reports.iter().find(|r| r.scenario == name).unwrap();
        let boots = report
            .steps
            .iter()
            .find(|s| s.action == "expect_boots")
            .unwrap();
        assert!(
            boots.detail.contains("3 boots of slot B"),
            "{name}: {}",
            boots.detail
        );
    }
}

/// The binary as a user runs it on this board: a scenario needing skerryd is a table
/// row saying so, and the run succeeds (not applicable is not a failure).
#[test]
fn skerry_scenarios_runs_the_arm64_board() {
    let out = Command::new(env!("CARGO_BIN_EXE_skerry-scenarios"))
        .args(["--board", "qemu-arm64-uboot", "--only", "happy-upgrade"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let row = text
        .lines()
        .find(|l| l.starts_with("| happy-upgrade"))
        .unwrap_or_else(|| panic!("no table row in:\n{text}"));
    assert!(row.contains("not applicable: needs skerryd"), "{row}");
    assert!(
        text.contains("| scenario") && text.contains("qemu-arm64-uboot"),
        "{text}"
    );
}
