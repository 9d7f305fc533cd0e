//! Every scenario file on the QEMU board (q35 under TCG, OVMF, the ESP's GRUB, the
//! pinned Debian kernel, skerryd as PID 1, i6300esb), through the same runner as the
//! simulated board, and the table scenario × board it prints (about 19 minutes for the
//! eight: the kernel hang alone spends three watchdog timeouts). Before that, the board's
//! own mechanics on the real boot chain: a power cut kills QEMU and the next power-on
//! boots the same disk; an initramfs that hangs after arming the watchdog is reset by
//! it, and QMP's events tell that watchdog reset from a power cut.
//!
//! Slow by nature: the first `scripts/build-static --fault-hooks` on a clean machine
//! takes about ten minutes (once per run; `SKERRY_STATIC_DIR` skips it), each image
//! build about 30 s, each boot 15–30 s under TCG.

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use skerry_hil::plan::{self, Verdict};
use skerry_hil::qemu::files::need_tool;
use skerry_hil::rig::qemu::artifacts::{static_programs, ImageBuild};
use skerry_hil::rig::qemu::{QemuBoard, QemuBoardSpec, Site};
use skerry_hil::rig::{Board, BoardEvent};

/// One QEMU at a time: the machine has two cores and each guest wants one.
static ONE_MACHINE: Mutex<()> = Mutex::new(());

fn one_machine() -> MutexGuard<'static, ()> {
    ONE_MACHINE.lock().unwrap_or_else(|p| p.into_inner())
}

const BOOT: Duration = Duration::from_secs(180);

fn site(dir: &Path) -> Arc<Site> {
    need_tool(
        "qemu-system-x86_64",
        "qemu-system-x86 (from bookworm-backports)",
    )
    .unwrap();
    let programs = static_programs().unwrap();
    Arc::new(Site::provision(dir, programs, &semver::Version::new(1, 0, 0)).unwrap())
}

#[test]
fn a_power_cut_kills_qemu_and_a_hang_after_arming_is_reset_by_the_watchdog() {
    let _one = one_machine();
    let dir = tempfile::tempdir().unwrap();
    let programs = static_programs().unwrap();
    let mut build = ImageBuild::new(semver::Version::new(1, 0, 0), &dir.path().join("hang.img"));
    build.fault = Some("hang-initramfs".into());
    let built = build.run(programs).unwrap();
    let mut board = QemuBoard::new(QemuBoardSpec {
        disk: built.disk,
        pki: None,
        repository: None,
        releases: None,
        runs_skerryd: false,
        fault_trigger: false,
        services: Vec::new(),
    })
    .unwrap();

    board.power_on().unwrap();
    board.expect_console("SKERRY-BOOT slot=A", BOOT).unwrap();
    let pid = board.machine().unwrap().pid();
    board.power_cut().unwrap();
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "QEMU {pid} survived the power cut"
    );
    assert_eq!(board.take_events(), vec![BoardEvent::PowerCut]);
    assert!(board.expect_console("x", Duration::from_secs(1)).is_err());

    board.power_on().unwrap();
    board.expect_console("SKERRY-BOOT slot=A", BOOT).unwrap();
    board.expect_console("SKERRY-WATCHDOG armed", BOOT).unwrap();
    let armed = Instant::now();
    let timeout = board
        .watchdog_timeout()
        .expect("the armed line gives a timeout");
    // The hung initramfs feeds nothing: only the watchdog can bring the machine back.
    board
        .expect_console("SKERRY-BOOT slot=A", timeout * 2 + BOOT)
        .unwrap();
    let events = board.take_timed_events();
    let kinds: Vec<&BoardEvent> = events.iter().map(|e| &e.event).collect();
    let transcript = board.transcript();
    let skerry_lines: Vec<&str> = board_lines(&transcript);
    assert_eq!(
        kinds,
        vec![&BoardEvent::WatchdogReset],
        "{events:?}\n{skerry_lines:#?}"
    );
    let fired = events[0].at.saturating_duration_since(armed);
    assert!(
        fired <= timeout + timeout / 10 + Duration::from_secs(2),
        "the watchdog fired {fired:?} after arming, timeout {timeout:?}"
    );
    let transcript = board.transcript();
    assert_eq!(
        transcript.matches("SKERRY-BOOT slot=A").count(),
        3,
        "{transcript}"
    );
    assert_eq!(board.power_ons(), 2);
    board.shut_down().unwrap();
}

/// The `SKERRY-` lines of a transcript (owned, for a message).
fn board_lines(transcript: &str) -> Vec<&str> {
    transcript
        .lines()
        .filter(|l| l.contains("SKERRY-"))
        .collect()
}

#[test]
fn every_scenario_file_passes_on_the_qemu_board() {
    let _one = one_machine();
    let dir = tempfile::tempdir().unwrap();
    let site = site(dir.path());
    let scenarios = plan::load_dir(Path::new(plan::SCENARIO_DIR)).unwrap();
    assert!(
        scenarios.len() >= 8,
        "only {} scenario files",
        scenarios.len()
    );
    let mut reports = Vec::new();
    for (_, scenario) in &scenarios {
        let mut board = QemuBoard::from_site(&site).unwrap();
        let report = plan::run(scenario, &mut board);
        println!("{}", plan::steps_text(&report));
        reports.push(report);
    }
    println!("{}", plan::table(&reports));
    let total: Duration = reports.iter().map(|r| r.elapsed).sum();
    println!("total {:.1} s", total.as_secs_f64());
    // Not applicable is a failure here: every scenario file must run on QEMU.
    let failed: Vec<String> = reports
        .iter()
        .filter(|r| r.verdict != Verdict::Passed)
        .map(|r| {
            let tail = r.transcript.as_deref().unwrap_or("");
            let start = tail.len().saturating_sub(6000);
            let start = (start..tail.len())
                .find(|&i| tail.is_char_boundary(i))
                .unwrap_or(tail.len());
            format!("{}\n{}", plan::steps_text(r), &tail[start..])
        })
        .collect();
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}
