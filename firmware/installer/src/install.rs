//! The whole install: guard the slot, refresh metadata, select, plan, make the slot
//! unbootable, write, verify, report.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use serde::Serialize;

use crate::error::InstallError;
use crate::guard::{check_slot, SlotActivation};
use crate::patches::{attach, fetch_patch_index, held_set, patch_sets, PatchUse};
use crate::plan::{fetch_head, make_plan, Plan, Source};
use crate::refresh::refresh;
use crate::seed::SeedIndex;
use crate::select::{select, Selector};
use crate::state::{
    load_root, load_slots, record_slot, repository_dir, save_root, DeviceState, SlotRelease,
};
use crate::ticker::with_ticker;
use crate::transport::{Fetcher, MinProgress, RetryLog, RetryPolicy, Transport};
use crate::write::write_slot;

/// Receives progress; the CLI draws a bar with it.
pub trait Progress: Sync {
    /// A new phase (`"metadata"`, `"reading seed"`, `"writing"`) of `total` bytes starts
    /// (`0`: not known up front).
    fn phase(&self, name: &str, total: u64);
    fn advance(&self, bytes: u64);
    /// Something the operator should know, which does not stop the install.
    fn warn(&self, _message: &str) {}
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
    /// The slot's name in the boot state (`B`): the install records which release the
    /// slot holds under it, for [`record_commit`](crate::state::record_commit) when
    /// that slot is later marked good. `None`: the slot's path names it.
    pub slot_name: Option<String>,
    /// The active slot, whose chunks are reused.
    pub seed: Option<PathBuf>,
    /// The slot the device booted from (never written, even when it is not mounted).
    pub booted: Option<PathBuf>,
    /// Whether a release older than the committed version may be installed.
    pub downgrade: Downgrade,
    pub retry: RetryPolicy,
    /// Where each retry of a download is reported, with its reason.
    pub retry_log: RetryLog,
    /// Fail when less than this arrives (default: 1 KiB/s averaged over 10 minutes).
    pub min_progress: MinProgress,
    /// The clock reading (tests pass a fixed time); the time floor still applies.
    pub clock: SystemTime,
}

/// Whether an older release than the committed one is accepted. It must still be a
/// release in valid signed metadata: the metadata's own rollback checks always apply.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Downgrade {
    #[default]
    Refuse,
    Allow,
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
    /// Chunks that came as patches against the seed (`patch_base`), and of those, the
    /// ones whose patch failed and that came whole instead.
    pub chunks_patched: u64,
    pub patch_fallbacks: u64,
    /// The release whose patches were used: the one the seed holds.
    pub patch_base: Option<String>,
    pub index_pages_fetched: usize,
    pub index_pages_from_seed: usize,
    /// Bytes of the seed cut to find reusable chunks.
    pub seed_bytes_scanned: u64,
    /// Whether an earlier, interrupted run of this install was resumed (the slot's
    /// chunks it had written were reused).
    pub resumed: bool,
    /// BLAKE3 of the whole slot, measured as read back from the medium (it matched the
    /// signed one).
    pub blake3: String,
    pub seconds: f64,
    /// The release's signed verity parameters (`custom.skerry.verity`), as signed: the
    /// caller parses them and puts them beside the boot state for the slot.
    pub verity: Option<String>,
}

/// Installs the selected release into `opts.slot`. The slot is refused when it is the
/// seed, the booted slot or mounted; `activation` makes it unbootable before its first
/// byte is written, and nothing here makes it bootable again: the caller starts its
/// trial after this returns `Ok`. Patches are used where the seed holds their base.
pub fn install(
    opts: &InstallOptions,
    activation: &mut dyn SlotActivation,
    progress: &dyn Progress,
) -> Result<InstallReport, InstallError> {
    install_with(opts, PatchUse::WhenBaseHeld, activation, progress)
}

/// [`install`], choosing whether published patches are used (`PatchUse::Ignore` is
/// what installers built before patches do).
pub fn install_with(
    opts: &InstallOptions,
    patch_use: PatchUse,
    activation: &mut dyn SlotActivation,
    progress: &dyn Progress,
) -> Result<InstallReport, InstallError> {
    let started = Instant::now();
    check_slot(&opts.slot, opts.seed.as_deref(), opts.booted.as_deref())?;
    let fetcher = Fetcher::new(opts.transport.clone(), opts.retry)
        .with_retry_log(opts.retry_log.clone())
        .with_min_progress(opts.min_progress);
    let repo_dir = repository_dir(&opts.state_dir, &opts.trusted_root)?;
    let mut state = DeviceState::load(&repo_dir)?;
    let mut root = load_root(&repo_dir, &opts.trusted_root)?;
    state.forget_rotated(root.root());
    let now = state.trusted_now(opts.clock);
    let verified = with_ticker(&fetcher, progress, "metadata", || {
        refresh(&fetcher, &mut root, &mut state.versions, now)
    })?;
    state.record_keys(root.root());
    state.raise_floor(now);
    save_root(&repo_dir, &root)?;
    state.save(&repo_dir)?;

    let selected = select(
        verified.targets(),
        &Selector {
            board: &opts.board,
            channel: opts.channel.as_deref(),
            version: opts.version.as_ref(),
        },
    )?;
    if opts.downgrade == Downgrade::Refuse {
        check_not_older(&state, &opts.board, &selected.version)?;
    }
    let head = fetch_head(&fetcher, &selected)?;
    // Patches need range requests: from a server that ignores them, the full pack in
    // one pass is already the most a delta costs.
    let sets = match patch_use {
        PatchUse::WhenBaseHeld if opts.seed.is_some() && !fetcher.ranges_ignored() => {
            patch_sets(verified.targets(), &selected)
        }
        _ => Vec::new(),
    };
    let seed = match &opts.seed {
        Some(path) => {
            let limit = state
                .slot_images
                .get(&path.display().to_string())
                .copied()
                .unwrap_or(u64::MAX);
            progress.phase("reading seed", file_len(path).min(limit));
            let marks: Vec<u64> = sets.iter().map(|s| s.base_image_len).collect();
            SeedIndex::scan_marked(path, head.params, limit, &marks, progress)?
        }
        None => SeedIndex::none(),
    };
    let slot_name = match &opts.slot_name {
        Some(name) => name.clone(),
        None => opts.slot.display().to_string(),
    };
    let writing = SlotRelease {
        repository: repo_dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        board: opts.board.clone(),
        version: selected.version.to_string(),
        partial: true,
    };
    // An earlier run of this same install gave up: what it wrote is reused.
    let resumed = load_slots(&opts.state_dir)?.get(&slot_name) == Some(&writing);
    let partial = if resumed {
        let limit = selected.release.image_length;
        progress.phase(
            "reading the unfinished slot",
            file_len(&opts.slot).min(limit),
        );
        SeedIndex::scan(&opts.slot, head.params, limit, progress)?
    } else {
        SeedIndex::none()
    };
    let mut plan = make_plan(&fetcher, &selected, head, &seed, &partial)?;
    let mut patch_base = None;
    if let Some(set) = held_set(&sets, &seed) {
        match fetch_patch_index(&fetcher, set) {
            Ok(index) => match attach(&mut plan, set, index, &seed) {
                Ok(()) => patch_base = Some(set.base_version.clone()),
                Err(why) => progress.warn(&format!(
                    "the patches from {} do not fit this release ({why}); fetching full \
                     chunks instead",
                    set.base_version
                )),
            },
            Err(e) => progress.warn(&format!(
                "the patches from {} are not usable ({e}); fetching full chunks instead",
                set.base_version
            )),
        }
    }
    if fetcher.ranges_ignored() {
        progress.warn(&format!(
            "{} ignores range requests: the pack is fetched in one pass, skipping what the \
             seed holds (at most one full download, no delta saving); serve the repository \
             with a server that honours Range to get deltas",
            fetcher.url("")
        ));
    }
    check_deliverable(opts.transport.as_ref(), &plan, &selected.pack_path)?;
    activation
        .deactivate()
        .map_err(|source| InstallError::Deactivate {
            slot: opts.slot.clone(),
            source,
        })?;
    record_slot(&opts.state_dir, &slot_name, writing.clone())?;
    let outcome = write_slot(
        &plan,
        selected.image_blake3,
        &fetcher,
        &selected.pack_path,
        opts.seed.as_deref(),
        &opts.slot,
        opts.slot_size,
        progress,
    )?;
    if outcome.patch_fallbacks > 0 {
        progress.warn(&format!(
            "{} patches did not give their chunk (damaged, or made against other bytes); \
             those chunks were fetched whole",
            outcome.patch_fallbacks
        ));
    }
    // Every chunk of the slot, read back from the medium after flushing, matched the
    // signed index, and the whole slot so read matched the signed BLAKE3: the slot holds
    // exactly the signed image.

    state
        .installed
        .insert(opts.board.clone(), selected.version.to_string());
    state
        .slot_images
        .insert(opts.slot.display().to_string(), outcome.bytes_written);
    state.save(&repo_dir)?;
    record_slot(
        &opts.state_dir,
        &slot_name,
        SlotRelease {
            partial: false,
            ..writing
        },
    )?;
    Ok(InstallReport {
        board: opts.board.clone(),
        version: selected.version.to_string(),
        bytes_fetched: fetcher.bytes_received(),
        bytes_written: outcome.bytes_written,
        chunks_reused: outcome.chunks_reused,
        chunks_fetched: outcome.chunks_fetched,
        chunks_patched: outcome.chunks_patched,
        patch_fallbacks: outcome.patch_fallbacks,
        patch_base,
        index_pages_fetched: plan.pages_fetched,
        index_pages_from_seed: plan.pages_from_seed,
        seed_bytes_scanned: seed.bytes_scanned,
        resumed,
        blake3: hex::encode(outcome.blake3),
        seconds: started.elapsed().as_secs_f64(),
        verity: selected.release.verity.clone(),
    })
}

/// Refuses, before the slot is touched, a plan whose full chunks the transport already
/// knows it cannot deliver (an offline bundle cut for another base than the seed's).
fn check_deliverable(
    transport: &dyn Transport,
    plan: &Plan,
    pack_path: &str,
) -> Result<(), InstallError> {
    for op in &plan.ops {
        if let Source::Pack { offset, comp_len } = op.source {
            transport
                .check_range(pack_path, offset, offset + u64::from(comp_len))
                .map_err(|source| InstallError::Fetch {
                    what: "the image pack".into(),
                    source,
                })?;
        }
    }
    Ok(())
}

fn check_not_older(
    state: &DeviceState,
    board: &str,
    offered: &semver::Version,
) -> Result<(), InstallError> {
    if let Some(committed) = state.committed.get(board) {
        if let Ok(committed) = semver::Version::parse(committed) {
            if *offered < committed {
                return Err(InstallError::Downgrade {
                    board: board.into(),
                    offered: offered.to_string(),
                    committed: committed.to_string(),
                });
            }
        }
    }
    Ok(())
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}
