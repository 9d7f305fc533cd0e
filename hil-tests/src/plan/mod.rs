//! Scenarios as files: the format ([`format`]), the device API calls the runner makes
//! ([`api`]), and the runner that executes a scenario on a [`crate::rig::Board`] and
//! prints the table scenario × board → result and time ([`run`]).
//!
//! The scenario files live in `hil-tests/scenarios/` ([`SCENARIO_DIR`]), one per story,
//! the same file for every board.

pub mod api;
pub mod format;
pub mod run;

use std::path::{Path, PathBuf};

pub use format::{load, parse, Action, FormatError, Scenario, Step};
pub use run::{run, steps_text, table, ScenarioReport, Verdict};

/// Where the scenario files are, in the source tree.
pub const SCENARIO_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios");

/// The most scenario files read from one directory.
pub const MAX_SCENARIOS: usize = 100;

/// Every `*.toml` in `dir`, sorted by file name, decoded; the first bad one is the error.
pub fn load_dir(dir: &Path) -> Result<Vec<(PathBuf, Scenario)>, FormatError> {
    let whole = |message: String| FormatError {
        file: dir.display().to_string(),
        line: 0,
        key: "(directory)".into(),
        message,
    };
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| whole(format!("cannot list it: {e}")))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    if paths.len() > MAX_SCENARIOS {
        return Err(whole(format!(
            "{} scenario files; at most {MAX_SCENARIOS} are read",
            paths.len()
        )));
    }
    paths.sort();
    let mut scenarios = Vec::new();
    for path in paths {
        let scenario = load(&path)?;
        if let Some((other, _)) = scenarios
            .iter()
            .find(|(_, s): &&(PathBuf, Scenario)| s.name == scenario.name)
        {
            return Err(FormatError {
                file: path.display().to_string(),
                line: 0,
                key: "name".into(),
                message: format!(
                    "{:?} is also the name of {}",
                    scenario.name,
                    other.display()
                ),
            });
        }
        scenarios.push((path, scenario));
    }
    Ok(scenarios)
}
