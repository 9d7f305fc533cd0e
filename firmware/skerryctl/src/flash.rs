//! `skerryctl flash --image disk.img --to DEVICE|FILE`: writes a disk image to a card,
//! a disk or a file, sparse-aware (bmaptool's way, without a map file), verifies it by
//! reading it back from the medium, and refuses targets that must not be written.
//!
//! Layout:
//! - [`refuse`]: every check made before the first byte (host disk, mounts, sizes…);
//!   [`sysblock`] reads mounts and block devices from /proc and /sys.
//! - [`target`]: opening the target (new or truncated file, exclusive block device).
//! - [`layout`]: the image's data ranges (SEEK_DATA/SEEK_HOLE).
//! - [`copy`]: writing non-zero blocks, clearing zero runs only where needed.
//! - [`verify`]: fsync, drop the cache, read back and compare hashes.

use std::fs::File;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use crate::output::{emit, Output, Report};

pub mod copy;
pub mod error;
pub mod layout;
pub mod refuse;
pub mod sysblock;
pub mod target;
pub mod verify;

#[cfg(test)]
mod tests;

use error::FlashError;
use refuse::{Existing, TargetKind};

const AFTER_HELP: &str = "\
Targets:
  a block device  written in place; must be at least the image's size, not mounted (nor
                  any of its partitions), not held by device-mapper/RAID, and not the disk
                  the host runs from (or on it) - there is no option to override that.
                  Zero runs are read first and written only where the device is not zero.
  a missing file  created, sized to the image; zero runs are left as holes.
  an empty file   used as a missing one.
  a non-empty file  refused unless --overwrite, which truncates it and writes it anew.
  Refused always: the image itself, a directory, a character device.
Every write is fsynced, the target's cached pages dropped, and the image read back from
the medium and compared (BLAKE3 per range) unless --no-verify.

Example:
  skerryctl flash --image disk.img --to /dev/sdb
  skerryctl flash --image disk.img --to vm-disk.img --overwrite --output json";

#[derive(Debug, clap::Args)]
#[command(after_help = AFTER_HELP)]
pub struct FlashArgs {
    /// The disk image to write (a regular file, sparse or not).
    #[arg(long)]
    image: PathBuf,
    /// The block device or file to write it to.
    #[arg(long)]
    to: PathBuf,
    /// Replace an existing non-empty regular file (never needed for a device).
    #[arg(long)]
    overwrite: bool,
    /// Skip reading the target back after writing it.
    #[arg(long)]
    no_verify: bool,
    /// Make every check, print what would be written, and write nothing.
    #[arg(long)]
    dry_run: bool,
}

/// What `flash` did (or, with --dry-run, would do).
#[derive(Debug, Serialize)]
struct FlashReport {
    image: PathBuf,
    target: PathBuf,
    target_kind: &'static str,
    dry_run: bool,
    image_bytes: u64,
    /// The bytes of the image's data ranges (the rest are holes).
    data_bytes: u64,
    bytes_written: u64,
    bytes_skipped: u64,
    bytes_verified: u64,
    verified: bool,
    seconds: f64,
    write_seconds: f64,
    verify_seconds: f64,
}

impl Report for FlashReport {
    fn text(&self) -> String {
        let (image, target) = (self.image.display(), self.target.display());
        if self.dry_run {
            return format!(
                "would write {image} ({} bytes, {} in data ranges) to {target} ({})\n",
                self.image_bytes, self.data_bytes, self.target_kind
            );
        }
        let check = if self.verified {
            format!("{} bytes read back and verified", self.bytes_verified)
        } else {
            "not verified (--no-verify)".into()
        };
        format!(
            "wrote {image} to {target}: {} bytes written, {} bytes of zeros skipped, {check}, \
             in {:.1} s\n",
            self.bytes_written, self.bytes_skipped, self.seconds
        )
    }
}

fn kind_name(kind: TargetKind) -> &'static str {
    match kind {
        TargetKind::NewFile => "new file",
        TargetKind::File => "file",
        TargetKind::BlockDevice(_) => "block device",
    }
}

fn bar(output: Output, len: u64, message: &'static str) -> ProgressBar {
    if output != Output::Text || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(
        "{msg:>9} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(message);
    bar
}

pub fn run(args: FlashArgs, output: Output) -> anyhow::Result<()> {
    if output == Output::Dot {
        return Err(crate::output::no_dot());
    }
    let report = flash(&args, output).map_err(|e| match e {
        FlashError::Refused(_) => crate::client::exit::usage(e.to_string()),
        other => other.into(),
    })?;
    emit(output, &report)
}

fn flash(args: &FlashArgs, output: Output) -> Result<FlashReport, FlashError> {
    let started = Instant::now();
    let host = refuse::Host::current()?;
    let existing = match args.overwrite {
        true => Existing::Overwrite,
        false => Existing::Refuse,
    };
    let (len, kind) = refuse::check(&args.image, &args.to, existing, &host)?;
    let image = File::open(&args.image).map_err(FlashError::io("open", &args.image))?;
    let _ = rustix::fs::fadvise(&image, 0, None, rustix::fs::Advice::Sequential);
    let data = layout::data_ranges(&image, len).map_err(FlashError::io("map", &args.image))?;
    let mut report = FlashReport {
        image: args.image.clone(),
        target: args.to.clone(),
        target_kind: kind_name(kind),
        dry_run: args.dry_run,
        image_bytes: len,
        data_bytes: layout::total(&data),
        bytes_written: 0,
        bytes_skipped: 0,
        bytes_verified: 0,
        verified: false,
        seconds: 0.0,
        write_seconds: 0.0,
        verify_seconds: 0.0,
    };
    if args.dry_run {
        return Ok(report);
    }
    let target = target::open(&args.to, kind, len, report.data_bytes)?;
    let result = write_and_verify(&image, args, &target, &data, output, &mut report);
    if result.is_err() && kind == TargetKind::NewFile {
        // A file we created and could not finish is no image: leave nothing behind.
        let _ = std::fs::remove_file(&args.to);
    }
    result?;
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

fn write_and_verify(
    image: &File,
    args: &FlashArgs,
    target: &target::Target,
    data: &[std::ops::Range<u64>],
    output: Output,
    report: &mut FlashReport,
) -> Result<(), FlashError> {
    let len = report.image_bytes;
    let writing = Instant::now();
    let progress = bar(output, len, "writing");
    let copied = copy::copy(image, &args.image, len, data, target, &progress)?;
    progress.set_message("syncing");
    verify::settle(target)?;
    progress.finish_and_clear();
    report.write_seconds = writing.elapsed().as_secs_f64();
    report.bytes_written = copied.written;
    report.bytes_skipped = copied.skipped;
    if !args.no_verify {
        let verifying = Instant::now();
        let progress = bar(output, len, "verifying");
        report.bytes_verified = verify::verify(target, &copied.pieces, &progress)?;
        progress.finish_and_clear();
        report.verified = true;
        report.verify_seconds = verifying.elapsed().as_secs_f64();
    }
    Ok(())
}
