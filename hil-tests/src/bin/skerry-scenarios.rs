//! Runs every scenario file on a chosen board and prints the table scenario × board →
//! result and time (and each scenario's steps).
//!
//! ```text
//! skerry-scenarios --board sim
//! skerry-scenarios --board qemu-x86_64 --only happy-upgrade
//! skerry-scenarios --board qemu-arm64-uboot      # busybox guests: needs scripts/deps/arm64-guest.sh
//! skerry-scenarios --board real --serial /dev/ttyUSB0 --relay-gpio 17 --api 10.0.0.7:50000 \
//!     --api-ca ca.crt --api-cert admin.crt --api-key admin.key   # built with --features rpi
//! ```
//!
//! A failed scenario prints the last console lines; with `SKERRY_TRANSCRIPT_DIR=DIR` its
//! whole console is also written to `DIR/NAME.console`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context as _};
use clap::{Parser, ValueEnum};
use skerry_hil::plan::{self, Verdict};
use skerry_hil::qemu::files::need_tool;
use skerry_hil::rig::qemu::artifacts::static_programs;
use skerry_hil::rig::qemu::{QemuBoard, Site};
use skerry_hil::rig::uboot_arm64::{Arm64Site, UbootArm64Board};
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

/// Makes a fresh board for each scenario; what boards share (the QEMU board's keys,
/// PKI and first disk) is made once.
enum Boards {
    Sim(PathBuf),
    /// The site, and the directory it lives in (kept until the run ends).
    Qemu(
        Arc<Site>,
        #[expect(dead_code, reason = "held only to keep the directory")] tempfile::TempDir,
    ),
    /// The arm64 site (guest packages, factory disk), and its directory.
    Arm64(
        Arc<Arm64Site>,
        #[expect(dead_code, reason = "held only to keep the directory")] tempfile::TempDir,
    ),
    Real,
}

impl Boards {
    fn new(args: &Args) -> anyhow::Result<Self> {
        Ok(match args.board {
            BoardKind::Sim => Boards::Sim(skerryd(args)?),
            BoardKind::QemuX86_64 => {
                need_tool(
                    "qemu-system-x86_64",
                    "qemu-system-x86 (from bookworm-backports)",
                )?;
                let programs = static_programs()?;
                let dir = tempfile::tempdir().context("creating the QEMU site's directory")?;
                let site = Site::provision(dir.path(), programs, &semver::Version::new(1, 0, 0))?;
                Boards::Qemu(Arc::new(site), dir)
            }
            BoardKind::QemuArm64Uboot => {
                let dir = tempfile::tempdir().context("creating the arm64 site's directory")?;
                let site = Arm64Site::provision(dir.path(), &semver::Version::new(1, 0, 0))?;
                Boards::Arm64(Arc::new(site), dir)
            }
            BoardKind::Real => Boards::Real,
        })
    }

    fn make(&self, args: &Args, dir: &std::path::Path) -> anyhow::Result<Box<dyn Board>> {
        match self {
            Boards::Sim(skerryd) => Ok(Box::new(skerry_hil::rig::sim::SimulatedBoard::build(
                dir,
                skerryd,
                skerry_hil::rig::sim::SimOptions::default(),
            )?)),
            Boards::Qemu(site, _) => Ok(Box::new(QemuBoard::from_site(site)?)),
            Boards::Arm64(site, _) => Ok(Box::new(UbootArm64Board::from_site(site)?)),
            Boards::Real => skerry_hil::rig::real::open(&args.real),
        }
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
    let boards = Boards::new(args)?;
    let mut reports = Vec::new();
    for (_, scenario) in &scenarios {
        if !args.only.is_empty() && !args.only.contains(&scenario.name) {
            continue;
        }
        let dir = tempfile::tempdir().context("creating a scratch directory")?;
        let mut board = boards.make(args, dir.path())?;
        eprintln!("running {} on {}", scenario.name, board.name());
        let report = plan::run(scenario, board.as_mut());
        println!("{}", plan::steps_text(&report));
        if let (Verdict::Failed(_), Some(transcript)) = (&report.verdict, &report.transcript) {
            if let Some(dir) = std::env::var_os("SKERRY_TRANSCRIPT_DIR") {
                let path = std::path::Path::new(&dir).join(format!("{}.console", scenario.name));
                std::fs::write(&path, transcript)
                    .with_context(|| format!("writing {}", path.display()))?;
                println!("  whole console: {}", path.display());
            }
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
