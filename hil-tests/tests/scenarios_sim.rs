//! Every scenario file on the simulated board (the real skerryd, file-backed slots,
//! the boot store's bootloader, a simulated watchdog, releases over HTTP from the
//! harness's repository), and the table scenario × board it prints; the files parse;
//! a malformed file is refused naming file, key and line; a failed expectation fails
//! the scenario.

use std::path::{Path, PathBuf};
use std::time::Duration;

use skerry_hil::plan::{self, Verdict};
use skerry_hil::rig::sim::{SimOptions, SimulatedBoard};

/// The skerryd binary: `SKERRYD_BIN`, or the one `cargo test --workspace` built beside
/// this package's binaries.
fn skerryd() -> PathBuf {
    if let Some(path) = std::env::var_os("SKERRYD_BIN") {
        return path.into();
    }
    let beside = Path::new(env!("CARGO_BIN_EXE_skerry-scenarios")).with_file_name("skerryd");
    assert!(
        beside.is_file(),
        "the simulated board runs skerryd: run `cargo build -p skerryd` (cargo test --workspace does) or set SKERRYD_BIN; looked for {}",
        beside.display()
    );
    beside
}

fn board(dir: &Path) -> SimulatedBoard {
    SimulatedBoard::build(dir, &skerryd(), SimOptions::default()).unwrap()
}

#[test]
fn every_scenario_file_parses() {
    let scenarios = plan::load_dir(Path::new(plan::SCENARIO_DIR)).unwrap();
    assert_eq!(scenarios.len(), 8, "{scenarios:?}");
    for (path, scenario) in &scenarios {
        assert!(!scenario.steps.is_empty(), "{}", path.display());
    }
}

#[test]
fn a_malformed_scenario_file_names_its_file_key_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.toml");
    std::fs::write(
        &path,
        "name = \"broken\"\nsummary = \"s\"\n\n[[step]]\npower_on = {}\n[[step]]\nwait_running = { slot = \"A\", timout = \"5s\" }\n",
    )
    .unwrap();
    let err = plan::load(&path).unwrap_err();
    assert_eq!(err.file, path.display().to_string());
    assert_eq!(err.line, 7, "{err}");
    assert_eq!(err.key, "timout", "{err}");
    let text = err.to_string();
    assert!(text.contains("broken.toml:7"), "{text}");
    // load_dir stops at the same file with the same error.
    let from_dir = plan::load_dir(dir.path()).unwrap_err();
    assert_eq!(from_dir, err);
}

/// The runner does not pass a scenario whose expectation fails: the machine runs A.
#[test]
fn a_failed_expectation_fails_the_scenario() {
    let scenario = plan::parse(
        "wrong.toml",
        "name = \"wrong\"\nsummary = \"s\"\n[[step]]\npower_on = {}\n[[step]]\nwait_running = {}\n[[step]]\nexpect_slot = { slot = \"B\" }\n[[step]]\npower_cut = {}\n",
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut sim = board(dir.path());
    let report = plan::run(&scenario, &mut sim);
    let Verdict::Failed(why) = &report.verdict else {
        panic!("{}", plan::steps_text(&report));
    };
    assert!(why.contains("line 8") && why.contains("not B"), "{why}");
    assert_eq!(report.steps.len(), 3, "stops at the failed step");
    assert!(report.transcript.is_some());
}

/// A scenario needing what the board lacks is not applicable, naming it.
#[test]
fn a_missing_capability_is_not_applicable() {
    let scenario = plan::parse(
        "n.toml",
        "name = \"n\"\nsummary = \"s\"\nneeds = [\"real_kernel\"]\n[[step]]\npower_on = {}\n",
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut sim = board(dir.path());
    let report = plan::run(&scenario, &mut sim);
    assert_eq!(
        report.verdict,
        Verdict::NotApplicable("needs real_kernel".into())
    );
    assert!(report.steps.is_empty());
}

#[test]
fn every_scenario_passes_on_the_simulated_board() {
    let scenarios = plan::load_dir(Path::new(plan::SCENARIO_DIR)).unwrap();
    let mut reports = Vec::new();
    for (_, scenario) in &scenarios {
        let dir = tempfile::tempdir().unwrap();
        let mut sim = board(dir.path());
        let report = plan::run(scenario, &mut sim);
        println!("{}", plan::steps_text(&report));
        reports.push(report);
    }
    println!("{}", plan::table(&reports));
    let failed: Vec<String> = reports
        .iter()
        .filter(|r| r.verdict != Verdict::Passed)
        .map(|r| {
            format!(
                "{}{}",
                plan::steps_text(r),
                r.transcript.as_deref().unwrap_or("")
            )
        })
        .collect();
    assert!(failed.is_empty(), "{}", failed.join("\n"));
    let total: Duration = reports.iter().map(|r| r.elapsed).sum();
    println!("total {:.1} s", total.as_secs_f64());
}

/// The binary as a user runs it: the chosen scenarios on the chosen board, a table.
#[test]
fn skerry_scenarios_prints_the_table_and_refuses_what_it_cannot_run() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_skerry-scenarios"))
        .args(["--board", "sim", "--only", "bad-signature", "--skerryd"])
        .arg(skerryd())
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
        .find(|l| l.starts_with("| bad-signature"))
        .unwrap_or_else(|| panic!("no table row in:\n{text}"));
    assert!(row.contains("passed"), "{row}");
    assert!(text.contains("| scenario"), "{text}");
    assert!(!text.contains("| happy-upgrade"), "--only ran more: {text}");

    // A malformed scenario directory: exit 2 and the file named.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("x.toml"), "name = \"x\"\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_skerry-scenarios"))
        .args(["--board", "sim", "--scenarios"])
        .arg(dir.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("x.toml") && err.contains("summary"), "{err}");

    // A real board without the relay driver built in says how to get it.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_skerry-scenarios"))
        .args(["--board", "real", "--serial", "/dev/null"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("--features rpi") || err.contains("--relay-gpio"),
        "{err}"
    );
}
