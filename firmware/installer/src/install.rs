//! The whole install: refresh metadata, select, plan, write, verify, report.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use serde::Serialize;

use crate::error::InstallError;
use crate::plan::{fetch_head, make_plan};
use crate::refresh::refresh;
use crate::seed::SeedIndex;
use crate::select::{select, Selector};
use crate::state::{load_root, save_root, DeviceState};
use crate::transport::{Fetcher, RetryPolicy, Transport};
use crate::write::write_slot;

/// Receives progress; the CLI draws a bar with it.
pub trait Progress: Sync {
    /// A new phase (`"seed"`, `"writing"`, `"verifying"`) of `total` bytes starts.
    fn phase(&self, name: &str, total: u64);
    fn advance(&self, bytes: u64);
}

/// No progress output.
#[derive(Debug, Clone, Copy)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn phase(&self, _: &str, _: u64) {}
    fn advance(&self, _: u64) {}
}

/// What to install, from where, into where.
#[derive(Debug, Clone)]
pub struct InstallOptions {
    pub transport: Arc<dyn Transport>,
    /// The root shipped with the device (used unless `state_dir` holds a newer one).
    pub trusted_root: Vec<u8>,
    /// Where the device remembers its trust between runs.
    pub state_dir: PathBuf,
    pub board: String,
    pub channel: Option<String>,
    pub version: Option<semver::Version>,
    /// The inactive slot to write.
    pub slot: PathBuf,
    /// The slot's size when it is a regular file standing in for a partition.
    pub slot_size: Option<u64>,
    /// The active slot, whose chunks are reused.
    pub seed: Option<PathBuf>,
    pub retry: RetryPolicy,
    /// The clock reading (tests pass a fixed time); the time floor still applies.
    pub clock: SystemTime,
}

/// The outcome of a successful install.
#[derive(Debug, Clone, Serialize)]
pub struct InstallReport {
    pub board: String,
    pub version: String,
    /// Every byte received: metadata, index and chunks, failed attempts included.
    pub bytes_fetched: u64,
    pub bytes_written: u64,
    pub chunks_reused: u64,
    pub chunks_fetched: u64,
    pub index_pages_fetched: usize,
    pub index_pages_from_seed: usize,
    /// Bytes of the seed cut to find reusable chunks.
    pub seed_bytes_scanned: u64,
    pub sha256: String,
    pub seconds: f64,
}

/// Installs the selected release into `opts.slot`. Never touches the boot state.
pub fn install(
    opts: &InstallOptions,
    progress: &dyn Progress,
) -> Result<InstallReport, InstallError> {
    let started = Instant::now();
    let fetcher = Fetcher::new(opts.transport.clone(), opts.retry);
    let mut state = DeviceState::load(&opts.state_dir)?;
    let mut root = load_root(&opts.state_dir, &opts.trusted_root)?;
    state.forget_rotated(root.root());
    let now = state.trusted_now(opts.clock);
    let verified = refresh(&fetcher, &mut root, &mut state.versions, now)?;
    state.record_keys(root.root());
    state.raise_floor(now);
    save_root(&opts.state_dir, &root)?;
    state.save(&opts.state_dir)?;

    let selected = select(
        verified.targets(),
        &Selector {
            board: &opts.board,
            channel: opts.channel.as_deref(),
            version: opts.version.as_ref(),
        },
    )?;
    check_not_older(&state, &opts.board, &selected.version)?;
    let head = fetch_head(&fetcher, &selected)?;
    let seed = match &opts.seed {
        Some(path) => {
            let limit = state
                .slot_images
                .get(&path.display().to_string())
                .copied()
                .unwrap_or(u64::MAX);
            progress.phase("reading seed", file_len(path).min(limit));
            SeedIndex::scan(path, head.params, limit, progress)?
        }
        None => SeedIndex::none(),
    };
    let plan = make_plan(&fetcher, &selected, head, &seed)?;
    let outcome = write_slot(
        &plan,
        &fetcher,
        &selected.pack_path,
        opts.seed.as_deref(),
        &opts.slot,
        opts.slot_size,
        progress,
    )?;
    // Every chunk of the slot, read back after flushing, matched the signed index, so
    // the slot holds exactly the signed image, whose sha256 the index head carries
    // (checked against the signed targets in fetch_head).

    state
        .installed
        .insert(opts.board.clone(), selected.version.to_string());
    state
        .slot_images
        .insert(opts.slot.display().to_string(), outcome.bytes_written);
    state.save(&opts.state_dir)?;
    Ok(InstallReport {
        board: opts.board.clone(),
        version: selected.version.to_string(),
        bytes_fetched: fetcher.bytes_received(),
        bytes_written: outcome.bytes_written,
        chunks_reused: outcome.chunks_reused,
        chunks_fetched: outcome.chunks_fetched,
        index_pages_fetched: plan.pages_fetched,
        index_pages_from_seed: plan.pages_from_seed,
        seed_bytes_scanned: seed.bytes_scanned,
        sha256: hex::encode(plan.head.image_sha256),
        seconds: started.elapsed().as_secs_f64(),
    })
}

fn check_not_older(
    state: &DeviceState,
    board: &str,
    offered: &semver::Version,
) -> Result<(), InstallError> {
    if let Some(installed) = state.installed.get(board) {
        if let Ok(installed) = semver::Version::parse(installed) {
            if *offered < installed {
                return Err(InstallError::Downgrade {
                    board: board.into(),
                    offered: offered.to_string(),
                    installed: installed.to_string(),
                });
            }
        }
    }
    Ok(())
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}
