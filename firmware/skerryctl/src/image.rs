//! `skerryctl image build`: wiring to `skerry-image` (boards/image). Reads the board
//! (a shipped name or a definition file), fills in the defaults (skerryd beside this
//! program, the slot image beside the disk, the kernel cache, the epoch) and reports
//! what was built.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use serde_json::json;
use skerry_boards::{shipped, BoardDefinition, SHIPPED};
use skerry_image::{build, default_slot_out, BuildRequest, Extension, FaultHook, DEFAULT_EPOCH};

use crate::output::{value, Output};

#[derive(Debug, clap::Subcommand)]
pub enum ImageCommand {
    /// Build the slot image and the flashable disk for a board.
    #[command(
        after_help = "Example:\n  skerryctl image build --board qemu-x86_64 --version 1.0.0 --out disk.img\n\n\
The kernel .deb comes from $SKERRY_KERNEL_CACHE (default /var/cache/skerry/kernels; \
scripts/install-deps test fetches it). Times are $SOURCE_DATE_EPOCH (default 2025-01-01)."
    )]
    Build {
        /// The board: a shipped definition's name (qemu-x86_64) or a definition file.
        #[arg(long)]
        board: String,
        /// The release version the image carries.
        #[arg(long)]
        version: semver::Version,
        /// The disk image to write (its metadata goes to <out>.json).
        #[arg(long)]
        out: PathBuf,
        /// The slot image to write (default: <out without .img>.slot.img); what
        /// `skerryctl release add --image` publishes.
        #[arg(long)]
        slot_out: Option<PathBuf>,
        /// The static skerryd (default: skerryd beside this skerryctl).
        #[arg(long)]
        skerryd: Option<PathBuf>,
        /// A machine config to ship as the factory config (/etc/skerry/config.yaml).
        #[arg(long)]
        config: Option<PathBuf>,
        /// A directory laid into the root (repeatable, in order).
        #[arg(long = "extension")]
        extensions: Vec<PathBuf>,
        /// An OCI image layer (tar) laid into the root (repeatable, after --extension).
        #[arg(long = "extension-layer")]
        layers: Vec<PathBuf>,
        /// Test builds only: a fault hook word (panic-initramfs, hang-initramfs,
        /// hang-daemon); needs a skerryd built with fault-hooks.
        #[arg(long)]
        fault: Option<FaultHook>,
        /// A directory with ca.crt, node.crt, node.key for this device, copied to the
        /// ESP's /skerry/pki/ (never into the slot).
        #[arg(long)]
        pki: Option<PathBuf>,
    },
}

/// The board named by `--board`, and its text for `/etc/skerry/board.toml`.
fn board(arg: &str) -> anyhow::Result<(BoardDefinition, String)> {
    if arg.ends_with(".toml") || arg.contains('/') {
        let path = Path::new(arg);
        let board = BoardDefinition::load(path)?;
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {arg}"))?;
        return Ok((board, text));
    }
    match shipped(arg) {
        Some(board) => {
            let text = SHIPPED
                .iter()
                .find(|(n, _)| *n == arg)
                .map(|(_, t)| t.to_string())
                .unwrap_or_default();
            Ok((board?, text))
        }
        None => {
            let names: Vec<&str> = SHIPPED.iter().map(|(n, _)| *n).collect();
            anyhow::bail!("no board named {arg:?}: the shipped boards are {}; or give a definition file (NAME.toml)", names.join(", "))
        }
    }
}

fn epoch() -> anyhow::Result<u64> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) => v
            .trim()
            .parse()
            .with_context(|| format!("SOURCE_DATE_EPOCH={v:?} is not a number of seconds")),
        Err(_) => Ok(DEFAULT_EPOCH),
    }
}

pub fn run(cmd: ImageCommand, output: Output) -> anyhow::Result<()> {
    let ImageCommand::Build {
        board: name,
        version,
        out,
        slot_out,
        skerryd,
        config,
        extensions,
        layers,
        fault,
        pki,
    } = cmd;
    let (board, board_toml) = board(&name)?;
    let skerryd = match skerryd {
        Some(p) => p,
        None => std::env::current_exe()?.with_file_name("skerryd"),
    };
    let mut exts: Vec<Extension> = extensions.into_iter().map(Extension::Dir).collect();
    exts.extend(layers.into_iter().map(Extension::Layer));
    let req = BuildRequest {
        board,
        board_toml,
        version: version.to_string(),
        slot_out: slot_out.unwrap_or_else(|| default_slot_out(&out)),
        out,
        skerryd,
        config,
        extensions: exts,
        fault,
        pki,
        kernel_cache: skerry_image::kernel::cache_dir(),
        epoch: epoch()?,
    };
    let started = Instant::now();
    let built = build(&req)?;
    let secs = started.elapsed().as_secs_f64();
    let report = json!({
        "disk": built.disk, "slot": built.slot, "metadata": built.metadata,
        "slot_sha256": built.slot_sha256, "slot_bytes": built.slot_bytes,
        "tree_bytes": built.tree_bytes, "initramfs_bytes": built.initramfs_bytes,
        "disk_bytes": built.disk_bytes, "seconds": secs,
    });
    value(output, &report, || {
        format!(
            "built {} ({} MiB disk) and slot image {} (sha256 {}; {:.1} MiB of files, initramfs {:.1} MiB) in {secs:.1} s\n",
            built.disk.display(),
            built.disk_bytes >> 20,
            built.slot.display(),
            built.slot_sha256,
            built.tree_bytes as f64 / 1048576.0,
            built.initramfs_bytes as f64 / 1048576.0,
        )
    })
}
