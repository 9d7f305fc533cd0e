//! The QEMU board's boot and update times, as a table (TCG on this machine):
//!
//! - power-on → GRUB's `SKERRY-BOOT` line, and → the kernel's first line;
//! - kernel → skerryd running (`SKERRY-INIT stage=system`: PID 1 in the slot);
//! - skerryd running → API ready (`SKERRY-READY`; target ≤ 1 s), on the first boot
//!   (which formats `/var`) and on a later one;
//! - a whole upgrade-and-commit (API upgrade, download, write, reboot into the trial,
//!   probation, commit), and a whole fail-and-rollback cycle (the new slot's initramfs
//!   panics, GRUB counts its tries and falls back by itself), each from the runner's step
//!   times on one board, publishing excluded.
//!
//! Each row is the median (and range) of `SKERRY_BENCH_RUNS` runs (default 3) for the
//! boot phases and `SKERRY_BENCH_CYCLES` runs (default 1; 0 skips them) for the cycles. Times are wall
//! clock at the moment the harness saw each console line.
//!
//! Run: `cargo bench -p skerry-hil --bench boot` (scripts/bench runs it). Needs what the
//! QEMU board needs (scripts/deps/qemu*.apt) and the static build
//! (`scripts/build-static --fault-hooks`, run by the bench; `SKERRY_STATIC_DIR` skips it).

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use skerry_hil::plan::{self, Verdict};
use skerry_hil::rig::qemu::artifacts::static_programs;
use skerry_hil::rig::qemu::{QemuBoard, Site};
use skerry_hil::rig::Board;

const BOOT: Duration = Duration::from_secs(240);

/// The phases of one boot, from power-on.
#[derive(Debug, Clone, Copy)]
struct BootTimes {
    grub: Duration,
    kernel: Duration,
    system: Duration,
    ready: Duration,
}

fn timed_boot(board: &mut QemuBoard) -> anyhow::Result<BootTimes> {
    let on = Instant::now();
    board.power_on()?;
    let mut at = |needle: &str| -> anyhow::Result<Duration> {
        board.expect_console(needle, BOOT)?;
        Ok(on.elapsed())
    };
    let grub = at("SKERRY-BOOT slot=")?;
    let kernel = at("Linux version")?;
    let system = at("SKERRY-INIT stage=system")?;
    let ready = at("SKERRY-READY")?;
    Ok(BootTimes {
        grub,
        kernel,
        system,
        ready,
    })
}

/// The first boot of a fresh board and a boot after a power cut.
fn boot_pair(site: &Arc<Site>) -> anyhow::Result<(BootTimes, BootTimes)> {
    let mut board = QemuBoard::from_site(site)?;
    let first = timed_boot(&mut board).with_context(|| tail(&board))?;
    board.power_cut()?;
    let later = timed_boot(&mut board).with_context(|| tail(&board))?;
    board.shut_down()?;
    Ok((first, later))
}

fn tail(board: &QemuBoard) -> String {
    let all = board.transcript();
    let lines: Vec<&str> = all.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

const UPGRADE: &str = r#"
name = "bench-upgrade"
summary = "upgrade and commit"
[[step]]
power_on = {}
[[step]]
wait_running = { slot = "A" }
[[step]]
publish = { version = "1.1.0", release = "good" }
[[step]]
install = { version = "1.1.0", timeout = "900s" }
[[step]]
wait_running = { slot = "B" }
[[step]]
expect_committed = { version = "1.1.0", within = "300s" }
"#;

const ROLLBACK: &str = r#"
name = "bench-rollback"
summary = "fail and roll back"
[[step]]
power_on = {}
[[step]]
wait_running = { slot = "A" }
[[step]]
publish = { version = "1.2.0", release = "fault", fault = "panic-initramfs" }
[[step]]
install = { version = "1.2.0", timeout = "900s" }
[[step]]
wait_running = { slot = "A", timeout = "900s" }
[[step]]
expect_rolled_back = { version = "1.2.0", by = "bootloader" }
"#;

/// Runs `text` on a fresh board; returns the time of the steps after `publish`.
fn cycle(site: &Arc<Site>, text: &str) -> anyhow::Result<Duration> {
    let scenario = plan::parse("bench.toml", text)?;
    let mut board = QemuBoard::from_site(site)?;
    let report = plan::run(&scenario, &mut board);
    if report.verdict != Verdict::Passed {
        bail!(
            "{}\n{}",
            plan::steps_text(&report),
            report.transcript.unwrap_or_default()
        );
    }
    let after_publish = report
        .steps
        .iter()
        .skip_while(|s| s.action != "publish")
        .skip(1)
        .map(|s| s.elapsed)
        .sum();
    Ok(after_publish)
}

/// `median (min–max)` in seconds, or why there is no figure.
fn summary(samples: &[Duration]) -> String {
    if samples.is_empty() {
        return "not measured".into();
    }
    let mut s = samples.to_vec();
    s.sort();
    let median = s[s.len() / 2];
    if s.len() == 1 {
        format!("{:.2}", median.as_secs_f64())
    } else {
        format!(
            "{:.2} ({:.2}–{:.2})",
            median.as_secs_f64(),
            s[0].as_secs_f64(),
            s[s.len() - 1].as_secs_f64()
        )
    }
}

/// `var` as a count of runs (at most 20; `0` skips those rows).
fn runs(var: &str, default: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n <= 20)
        .unwrap_or(default)
}

fn qemu_version() -> String {
    Command::new("qemu-system-x86_64")
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|t| t.lines().next().map(str::to_owned))
        .unwrap_or_else(|| "qemu-system-x86_64 (version unknown)".into())
}

fn main() -> anyhow::Result<()> {
    // `cargo bench` passes `--bench`; a libtest-style filter or `--list` is not ours.
    if std::env::args().any(|a| a == "--list") {
        return Ok(());
    }
    let boot_runs = runs("SKERRY_BENCH_RUNS", 3);
    let cycle_runs = runs("SKERRY_BENCH_CYCLES", 1);
    let programs = static_programs()?;
    let dir = tempfile::tempdir()?;
    let site = Arc::new(Site::provision(
        &dir.path().join("site"),
        programs,
        &semver::Version::new(1, 0, 0),
    )?);
    let mut rows: Vec<(&str, Vec<Duration>)> = vec![
        ("power-on → GRUB (SKERRY-BOOT)", vec![]),
        ("power-on → kernel (first kernel line)", vec![]),
        ("kernel → skerryd running (stage=system)", vec![]),
        (
            "skerryd running → API ready, first boot (formats /var)",
            vec![],
        ),
        (
            "skerryd running → API ready, later boot [target ≤ 1 s]",
            vec![],
        ),
        ("power-on → API ready, later boot", vec![]),
        (
            "upgrade and commit (API → committed, probation 20 s)",
            vec![],
        ),
        (
            "fail and roll back (initramfs panics, GRUB falls back)",
            vec![],
        ),
    ];
    let mut errors = Vec::new();
    for _ in 0..boot_runs {
        match boot_pair(&site) {
            Ok((first, later)) => {
                for (i, value) in [
                    first.grub,
                    first.kernel,
                    first.system - first.kernel,
                    first.ready - first.system,
                    later.ready - later.system,
                    later.ready,
                ]
                .into_iter()
                .enumerate()
                {
                    rows[i].1.push(value);
                }
            }
            Err(e) => errors.push(format!("boot: {e:#}")),
        }
    }
    for _ in 0..cycle_runs {
        match cycle(&site, UPGRADE) {
            Ok(d) => rows[6].1.push(d),
            Err(e) => errors.push(format!("upgrade: {e:#}")),
        }
        match cycle(&site, ROLLBACK) {
            Ok(d) => rows[7].1.push(d),
            Err(e) => errors.push(format!("rollback: {e:#}")),
        }
    }
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "QEMU board boot bench: TCG (no KVM), {}, q35 + OVMF, {cores} host cores; seconds, median (min–max) of {boot_runs} boot runs / {cycle_runs} cycle runs",
        qemu_version()
    );
    let width = rows
        .iter()
        .map(|(n, _)| n.chars().count())
        .max()
        .unwrap_or(0);
    println!("| {:<width$} | seconds |", "phase");
    println!("|{}|---------|", "-".repeat(width + 2));
    for (name, samples) in &rows {
        let pad = width - name.chars().count();
        println!("| {name}{} | {} |", " ".repeat(pad), summary(samples));
    }
    for e in &errors {
        eprintln!("{e}");
    }
    if !errors.is_empty() {
        bail!("{} run(s) failed (above)", errors.len());
    }
    Ok(())
}
