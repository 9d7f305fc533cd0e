//! What the install and delta benchmarks share: checking the peer tools are there, running
//! a tool, and measuring casync's delta (both examples include this file by path).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

type Error = Box<dyn std::error::Error>;

/// Fails naming every missing tool and the install-deps group that brings them.
pub fn check_tools(tools: &[&str]) -> Result<(), Error> {
    let missing: Vec<&str> = tools
        .iter()
        .copied()
        .filter(|t| {
            Command::new("sh")
                .arg("-c")
                .arg(format!("command -v {t}"))
                .stdout(Stdio::null())
                .status()
                .map_or(true, |s| !s.success())
        })
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "missing {}: install the benchmark peers with scripts/install-deps bench",
            missing.join(", ")
        )
        .into())
    }
}

/// Runs a tool; its stdout, or an error carrying its stderr.
pub fn run(cmd: &mut Command) -> Result<String, Error> {
    let out = cmd.output()?;
    if !out.status.success() {
        return Err(format!("{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Every file below `dir`, recursively.
pub fn files(dir: &Path, out: &mut HashSet<PathBuf>) -> Result<(), Error> {
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        if p.is_dir() {
            files(&p, out)?;
        } else {
            out.insert(p);
        }
    }
    Ok(())
}

/// Bytes a casync client holding v1's chunks fetches for v2: the chunk files `casync
/// make` adds to a store shared with v1, plus v2's index. The store is removed after.
pub fn casync_delta(w: &Path, v1: &Path, v2: &Path) -> Result<u64, Error> {
    let store = w.join("casync.castr");
    let make = |img: &Path, idx: &Path| -> Result<String, Error> {
        run(Command::new("casync")
            .arg("make")
            .arg(format!("--store={}", store.display()))
            .arg(idx)
            .arg(img))
    };
    make(v1, &w.join("v1.caibx"))?;
    let mut before = HashSet::new();
    files(&store, &mut before)?;
    make(v2, &w.join("v2.caibx"))?;
    let mut after = HashSet::new();
    files(&store, &mut after)?;
    let mut total = std::fs::metadata(w.join("v2.caibx"))?.len();
    for p in after.difference(&before) {
        total += std::fs::metadata(p)?.len();
    }
    std::fs::remove_dir_all(&store)?;
    Ok(total)
}
