//! `skerryctl install`: the offline installer. Verifies a signed release and writes it
//! into a slot, reusing the chunks of a seed (the active slot). With `--store`, the
//! target slot is marked bad in the boot state before its first byte is written (and
//! stays so if the install fails); start its trial with `skerryctl boot begin-trial`
//! after this succeeds.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use skerry_boot_state::{BootState, SlotName, SlotStatus, StoreSpec};
use skerry_installer::guard::ActivationError;
use skerry_installer::transport::MinProgress;
use skerry_installer::{
    install, open_url, Downgrade, InstallOptions, InstallReport, NoBootState, Progress, RetryLog,
    RetryPolicy, SlotActivation,
};

use crate::output::Output;

#[derive(Debug, Args)]
pub struct InstallArgs {
    /// The repository: file:///path, http(s)://host/path, or bundle:FILE (an offline
    /// bundle from `skerryctl release bundle`, verified exactly like a repository).
    #[arg(long)]
    repo: String,
    /// The root metadata the device trusts (shipped with it).
    #[arg(long)]
    trusted_root: PathBuf,
    /// The board this device is, like rpi4 (releases are published per board).
    #[arg(long)]
    board: String,
    /// The slot to write (a file or block device).
    #[arg(long)]
    slot: PathBuf,
    /// The slot's size in bytes when --slot is a regular file standing in for a
    /// partition (a block device's own size always applies).
    #[arg(long)]
    slot_size: Option<u64>,
    /// The active slot, whose chunks need not be downloaded.
    #[arg(long)]
    seed: Option<PathBuf>,
    /// Install exactly this version (default: the newest).
    #[arg(long)]
    version: Option<String>,
    /// Only consider releases on this channel.
    #[arg(long)]
    channel: Option<String>,
    /// Where the device remembers metadata versions, the time floor and installed versions.
    #[arg(long, default_value = "/var/lib/skerry/update")]
    state: PathBuf,
    /// Drop and resume a connection that delivers nothing for this long.
    #[arg(long, default_value = "30s")]
    stall_timeout: String,
    /// Failed attempts in a row before giving up on a download.
    #[arg(long, default_value_t = 8)]
    attempts: u32,
    /// Give up when less than this many bytes per second arrive, averaged over
    /// --min-progress-window of waiting on the network (generous for satellite links).
    #[arg(long, value_name = "BYTES_PER_SEC", default_value_t = 1024)]
    min_progress: u64,
    /// The window --min-progress is averaged over.
    #[arg(long, value_name = "DURATION", default_value = "10m")]
    min_progress_window: String,
    /// The boot state (as for `skerryctl boot --store`): the target slot is marked bad
    /// in it before the install writes anything. Needs --slot-name.
    #[arg(long, value_name = "STORE", requires = "slot_name")]
    store: Option<StoreSpec>,
    /// The target slot's name in the boot state (like B); the state remembers which
    /// release it holds, so `skerryctl boot mark-good NAME --state DIR` commits it.
    #[arg(long, value_name = "NAME")]
    slot_name: Option<SlotName>,
    /// The slot the device booted from: never written, even if it is not mounted.
    #[arg(long, value_name = "PATH")]
    booted: Option<PathBuf>,
    /// Install a release older than the committed version (it must still be in valid
    /// signed metadata).
    #[arg(long)]
    allow_downgrade: bool,
}

pub fn run(args: InstallArgs, output: Output) -> anyhow::Result<()> {
    let trusted_root = std::fs::read(&args.trusted_root)
        .with_context(|| format!("reading --trusted-root {}", args.trusted_root.display()))?;
    let version = args
        .version
        .as_deref()
        .map(semver::Version::parse)
        .transpose()
        .context("--version is not semantic versioning (like 1.2.3)")?;
    let stall = humantime::parse_duration(&args.stall_timeout)
        .context("--stall-timeout is not a duration like 30s")?;
    let window = humantime::parse_duration(&args.min_progress_window)
        .context("--min-progress-window is not a duration like 10m")?;
    let opts = InstallOptions {
        transport: open_url(&args.repo, stall)?,
        trusted_root,
        state_dir: args.state,
        board: args.board,
        channel: args.channel,
        version,
        slot: args.slot,
        slot_size: args.slot_size,
        slot_name: args.slot_name.as_ref().map(|n| n.as_str().to_string()),
        seed: args.seed,
        booted: args.booted,
        downgrade: if args.allow_downgrade {
            Downgrade::Allow
        } else {
            Downgrade::Refuse
        },
        retry: RetryPolicy {
            attempts: args.attempts.max(1),
            first_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(30),
        },
        min_progress: MinProgress {
            bytes_per_sec: args.min_progress,
            window,
        },
        retry_log: RetryLog::new(|message| eprintln!("skerryctl install: {message}")),
        clock: SystemTime::now(),
    };
    let bar = Bar::new(std::io::stderr().is_terminal());
    let report = match (args.store, args.slot_name) {
        (Some(spec), Some(slot)) => install(&opts, &mut MarkBad { spec, slot }, &bar)?,
        _ => install(&opts, &mut NoBootState, &bar)?,
    };
    bar.done();
    print_report(&report, output)
}

fn print_report(r: &InstallReport, output: Output) -> anyhow::Result<()> {
    match output {
        Output::Json => println!("{}", serde_json::to_string_pretty(r)?),
        Output::Yaml => print!("{}", crate::output::yaml(&serde_json::to_value(r)?)),
        Output::Dot => return Err(crate::output::no_dot()),
        Output::Text => println!(
            "installed {} {}: wrote {} bytes, fetched {} bytes, {} chunks reused, {} fetched, blake3 {} (read back) in {:.2}s",
            r.board,
            r.version,
            r.bytes_written,
            r.bytes_fetched,
            r.chunks_reused,
            r.chunks_fetched,
            r.blake3,
            r.seconds
        ),
    }
    Ok(())
}

/// Marks the target slot bad in the boot store before the install writes it.
struct MarkBad {
    spec: StoreSpec,
    slot: SlotName,
}

impl SlotActivation for MarkBad {
    fn deactivate(&mut self) -> Result<(), ActivationError> {
        let mut store = self.spec.open()?;
        let mut state: BootState = store.load()?;
        if state.status(&self.slot)? != SlotStatus::Bad {
            state.mark_bad(&self.slot)?;
            store.commit(&state)?;
        }
        Ok(())
    }
}

/// A progress bar on stderr when it is a terminal; silent otherwise.
struct Bar {
    bar: Mutex<Option<ProgressBar>>,
    enabled: bool,
}

impl Bar {
    fn new(enabled: bool) -> Self {
        Self {
            bar: Mutex::new(None),
            enabled,
        }
    }

    fn done(&self) {
        if let Ok(mut bar) = self.bar.lock() {
            if let Some(b) = bar.take() {
                b.finish_and_clear();
            }
        }
    }
}

impl Progress for Bar {
    fn warn(&self, message: &str) {
        eprintln!("skerryctl install: warning: {message}");
    }

    fn phase(&self, name: &str, total: u64) {
        if !self.enabled {
            return;
        }
        if let Ok(mut bar) = self.bar.lock() {
            if let Some(b) = bar.take() {
                b.finish_and_clear();
            }
            let b = ProgressBar::new(total);
            if let Ok(style) = ProgressStyle::with_template(
                "{msg:>12} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            ) {
                b.set_style(style.progress_chars("=> "));
            }
            b.set_message(name.to_string());
            *bar = Some(b);
        }
    }

    fn advance(&self, bytes: u64) {
        if !self.enabled {
            return;
        }
        if let Ok(bar) = self.bar.lock() {
            if let Some(b) = bar.as_ref() {
                b.inc(bytes);
            }
        }
    }
}
