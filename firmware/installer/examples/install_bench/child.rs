//! One install in a child process (this same binary), measured with GNU time so the
//! peak RSS is the installer's own.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::SystemTime;

use skerry_installer::install::NoProgress;
use skerry_installer::transport::FileTransport;
use skerry_installer::{
    install as run_install, Downgrade, InstallOptions, InstallReport, NoBootState, RetryPolicy,
};

use crate::Error;

pub const FLAG: &str = "--child-install";

/// What a child install reported, plus its peak RSS.
#[derive(Debug)]
pub struct Measured {
    pub seconds: f64,
    pub bytes_fetched: u64,
    pub index_pages_fetched: u64,
    pub peak_rss_kib: u64,
}

pub fn install(
    repo: &Path,
    slot: &Path,
    seed: Option<&Path>,
    state: &Path,
) -> Result<Measured, Error> {
    install_version(repo, slot, seed, state, None)
}

pub fn install_version(
    repo: &Path,
    slot: &Path,
    seed: Option<&Path>,
    state: &Path,
    version: Option<&str>,
) -> Result<Measured, Error> {
    let exe = std::env::current_exe()?;
    let out = Command::new("/usr/bin/time")
        .arg("-f")
        .arg("RSS_KIB=%M")
        .arg(exe)
        .arg(FLAG)
        .arg(repo)
        .arg(slot)
        .arg(state)
        .arg(seed.map_or("-".into(), |s| s.display().to_string()))
        .arg(version.unwrap_or("-"))
        .output()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        return Err(format!("child install failed: {stderr}").into());
    }
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let rss = stderr
        .lines()
        .find_map(|l| l.strip_prefix("RSS_KIB="))
        .and_then(|v| v.trim().parse().ok())
        .ok_or("GNU time printed no RSS")?;
    Ok(Measured {
        seconds: report["seconds"].as_f64().unwrap_or(f64::NAN),
        bytes_fetched: report["bytes_fetched"].as_u64().unwrap_or(0),
        index_pages_fetched: report["index_pages_fetched"].as_u64().unwrap_or(0),
        peak_rss_kib: rss,
    })
}

/// The child: `--child-install REPO SLOT STATE SEED|- VERSION|-`.
pub fn run(args: &[String]) -> Result<(), Error> {
    let [repo, slot, state, seed, version] = args else {
        return Err("usage: --child-install REPO SLOT STATE SEED|- VERSION|-".into());
    };
    let repo = Path::new(repo);
    let opts = InstallOptions {
        transport: Arc::new(FileTransport::new(repo.into())),
        trusted_root: std::fs::read(repo.join("metadata/1.root.json"))?,
        state_dir: state.into(),
        board: "bench".into(),
        channel: None,
        version: (version != "-")
            .then(|| semver::Version::parse(version))
            .transpose()?,
        slot: slot.into(),
        slot_size: None,
        slot_name: None,
        seed: (seed != "-").then(|| seed.into()),
        booted: None,
        downgrade: Downgrade::Refuse,
        retry: RetryPolicy::default(),
        retry_log: skerry_installer::RetryLog::default(),
        min_progress: Default::default(),
        clock: SystemTime::now(),
    };
    let report: InstallReport = if std::env::var_os("SKERRY_BENCH_TRACE").is_some() {
        let trace = Trace(std::time::Instant::now());
        let r = run_install(&opts, &mut NoBootState, &trace)?;
        eprintln!("trace: done at {:.3}s", trace.0.elapsed().as_secs_f64());
        r
    } else {
        run_install(&opts, &mut NoBootState, &NoProgress)?
    };
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}

/// Prints when each phase starts (`SKERRY_BENCH_TRACE=1`).
struct Trace(std::time::Instant);

impl skerry_installer::Progress for Trace {
    fn phase(&self, name: &str, total: u64) {
        eprintln!(
            "trace: {name} ({total} bytes) at {:.3}s",
            self.0.elapsed().as_secs_f64()
        );
    }
    fn advance(&self, _: u64) {}
}
