//! `skerryctl install`: the offline installer. Verifies a signed release and writes it
//! into a slot, reusing the chunks of a seed (the active slot). It never changes the
//! boot state: flip it with `skerryctl boot begin-trial` after this succeeds.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use skerry_installer::{install, open_url, InstallOptions, InstallReport, Progress, RetryPolicy};

#[derive(Debug, Args)]
pub struct InstallArgs {
    /// The repository: file:///path or http(s)://host/path.
    #[arg(long)]
    repo: String,
    /// The root metadata the device trusts (shipped with it).
    #[arg(long)]
    trusted_root: PathBuf,
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
    #[arg(long, value_enum, default_value_t = Output::Text)]
    output: Output,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Output {
    Text,
    Json,
}

pub fn run(args: InstallArgs) -> anyhow::Result<()> {
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
    let opts = InstallOptions {
        transport: open_url(&args.repo, stall)?,
        trusted_root,
        state_dir: args.state,
        board: args.board,
        channel: args.channel,
        version,
        slot: args.slot,
        slot_size: args.slot_size,
        seed: args.seed,
        retry: RetryPolicy {
            attempts: args.attempts.max(1),
            first_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(30),
        },
        clock: SystemTime::now(),
    };
    let bar = Bar::new(std::io::stderr().is_terminal());
    let report = install(&opts, &bar)?;
    bar.done();
    print_report(&report, args.output)
}

fn print_report(r: &InstallReport, output: Output) -> anyhow::Result<()> {
    match output {
        Output::Json => println!("{}", serde_json::to_string_pretty(r)?),
        Output::Text => println!(
            "installed {} {}: wrote {} bytes, fetched {} bytes, {} chunks reused, {} fetched, sha256 {} in {:.2}s",
            r.board,
            r.version,
            r.bytes_written,
            r.bytes_fetched,
            r.chunks_reused,
            r.chunks_fetched,
            r.sha256,
            r.seconds
        ),
    }
    Ok(())
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
