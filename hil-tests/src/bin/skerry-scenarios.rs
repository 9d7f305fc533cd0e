//! Runs every scenario file on a chosen board and prints the table scenario × board →
//! result and time (and each scenario's steps).
//!
//! ```text
//! skerry-scenarios --board sim
//! skerry-scenarios --board real --serial /dev/ttyUSB0 --relay-gpio 17 --skerryd-api ...
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context as _};
use clap::{Parser, ValueEnum};
use skerry_hil::plan::{self, Verdict};
use skerry_hil::rig::Board;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum BoardKind {
    /// The simulated board (skerryd in --root mode on file-backed slots).
    Sim,
    /// QEMU x86_64 with OVMF, GRUB and i6300esb, booting `skerryctl image build` disks.
    #[value(name = "qemu-x86_64")]
    QemuX86_64,
    /// QEMU arm64 with U-Boot and busybox guests.
    #[value(name = "qemu-arm64-uboot")]
    QemuArm64Uboot,
    /// A real board on a serial console, its power on a relay.
    Real,
}

#[derive(Debug, Parser)]
#[command(about = "Run the hardware-in-the-loop scenario files on a board")]
struct Args {
    /// The board to run on.
    #[arg(long, value_enum)]
    board: BoardKind,
    /// The scenario files' directory.
    #[arg(long, default_value = plan::SCENARIO_DIR)]
    scenarios: PathBuf,
    /// Run only the scenarios with these names.
    #[arg(long = "only")]
    only: Vec<String>,
    /// The skerryd binary (sim board): default `skerryd` beside this program.
    #[arg(long)]
    skerryd: Option<PathBuf>,
    #[command(flatten)]
    real: skerry_hil::rig::real::RealArgs,
}

fn skerryd(args: &Args) -> anyhow::Result<PathBuf> {
    if let Some(path) = &args.skerryd {
        return Ok(path.clone());
    }
    let me = std::env::current_exe().context("finding this program's path")?;
    let beside = me.with_file_name("skerryd");
    if !beside.is_file() {
        bail!(
            "no skerryd beside {}: build it (`cargo build -p skerryd`) or pass --skerryd",
            me.display()
        );
    }
    Ok(beside)
}

fn board(args: &Args, dir: &std::path::Path) -> anyhow::Result<Box<dyn Board>> {
    match args.board {
        BoardKind::Sim => Ok(Box::new(skerry_hil::rig::sim::SimulatedBoard::build(
            dir,
            &skerryd(args)?,
            skerry_hil::rig::sim::SimOptions::default(),
        )?)),
        BoardKind::Real => skerry_hil::rig::real::open(&args.real),
        BoardKind::QemuX86_64 | BoardKind::QemuArm64Uboot => bail!(
            "the {:?} backend is not wired into skerry-scenarios yet (hil-tests/src/rig/qemu.rs, tests/scenarios_qemu.rs run it)",
            args.board
        ),
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(args: &Args) -> anyhow::Result<bool> {
    let scenarios = plan::load_dir(&args.scenarios)?;
    let mut reports = Vec::new();
    for (_, scenario) in &scenarios {
        if !args.only.is_empty() && !args.only.contains(&scenario.name) {
            continue;
        }
        let dir = tempfile::tempdir().context("creating a scratch directory")?;
        let mut board = board(args, dir.path())?;
        eprintln!("running {} on {}", scenario.name, board.name());
        let report = plan::run(scenario, board.as_mut());
        println!("{}", plan::steps_text(&report));
        if let (Verdict::Failed(_), Some(transcript)) = (&report.verdict, &report.transcript) {
            let tail: Vec<&str> = transcript.lines().rev().take(40).collect();
            println!("  last console lines:");
            for line in tail.iter().rev() {
                println!("    {line}");
            }
        }
        reports.push(report);
    }
    println!("{}", plan::table(&reports));
    Ok(reports
        .iter()
        .all(|r| !matches!(r.verdict, Verdict::Failed(_))))
}
