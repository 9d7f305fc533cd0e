//! `delta-bench`: the realistic delta benchmark. Two root filesystems of a small Debian
//! 12 system (v1 from `debootstrap --variant=minbase`, v2 = v1 plus a few packages,
//! built in one run; see `rootfs.sh`), each as an ext4 image and as an uncompressed
//! squashfs image, and the bytes a device holding v1 fetches to install v2:
//!
//! - ours: v1 and v2 published with the real release tooling (`skerryctl release`),
//!   installed with the real installer (`skerryctl install`, v1 as seed) from a local
//!   HTTP server that counts every byte it sends (metadata, index pages, chunks,
//!   patches); once with whole chunks, and once with `--delta-from 1.0.0` when this
//!   skerryctl has that flag (the row is left out, never guessed, when it has not),
//!   with the repository's extra storage for the patches;
//! - casync: v2's chunks not in v1's store, plus v2's `.caibx`;
//! - `zstd -3` and `zstd -19 --long --patch-from` (window covering the image).
//!
//! Run by hand (it needs Debian's mirror and a few minutes; `scripts/bench` runs it):
//!
//! ```text
//! cargo build --release -p skerryctl
//! cargo run --release -p skerry-installer --example delta-bench
//! ```
//!
//! `SKERRY_BENCH_CACHE` (default `/var/cache/skerry-bench`) keeps the trees and images
//! between runs; `SKERRY_BENCH_DIR` is where the repositories and slots go (default the
//! temporary directory); `SKERRYCTL` names the skerryctl binary.
//!
//! Layout: `rootfs.sh` builds the trees and images, `skerryctl` drives the release
//! tooling and installer, `server` is the counting HTTP server, `peers` runs casync and
//! zstd, `table` prints the figures.

#[path = "../bench_common/mod.rs"]
mod bench_common;
mod peers;
mod server;
mod skerryctl;
mod table;

use std::path::{Path, PathBuf};
use std::process::Command;

use skerryctl::Skerryctl;
use table::{Fetched, Patched, Patches, Upgrade};

type Error = Box<dyn std::error::Error>;

fn main() -> Result<(), Error> {
    peers::check_tools()?;
    let ctl = Skerryctl::locate()?;
    let patches = ctl.has_delta_from()?;
    let cache = std::env::var_os("SKERRY_BENCH_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/skerry-bench"));
    let images = build_images(&cache.join("delta"))?;
    let base = std::env::var_os("SKERRY_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let work = tempfile::Builder::new()
        .prefix("delta-bench")
        .tempdir_in(base)?;
    let w = work.path();
    eprintln!(
        "delta-bench: images in {}, working in {}; patches {}",
        images.display(),
        w.display(),
        if patches {
            "offered (--delta-from)"
        } else {
            "not offered by this skerryctl"
        }
    );
    let keys = w.join("keys");
    ctl.keygen(&keys)?;
    let mut upgrades = Vec::new();
    for (ext, format, zstd_target) in [
        ("ext4", "ext4 (mke2fs -d)", true),
        (
            "sqfs",
            "squashfs, uncompressed (-noI -noD -noF -noX)",
            false,
        ),
    ] {
        let v1 = images.join(format!("v1.{ext}"));
        let v2 = images.join(format!("v2.{ext}"));
        let dir = w.join(ext);
        std::fs::create_dir_all(&dir)?;
        upgrades.push(measure(
            &ctl,
            &keys,
            &dir,
            &v1,
            &v2,
            format,
            zstd_target,
            patches,
        )?);
        eprintln!("delta-bench: {format} done");
    }
    print_packages(&images)?;
    print!("{}", table::render(&upgrades));
    Ok(())
}

/// Runs `rootfs.sh`; the last line it prints is the directory of the images.
fn build_images(cache: &Path) -> Result<PathBuf, Error> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/delta_bench/rootfs.sh");
    let out = Command::new("bash")
        .arg(&script)
        .arg(cache)
        .stderr(std::process::Stdio::inherit())
        .output()?;
    if !out.status.success() {
        return Err(format!("{} failed (see above)", script.display()).into());
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let dir = stdout
        .lines()
        .last()
        .map(PathBuf::from)
        .filter(|d| d.join("done").is_file())
        .ok_or_else(|| format!("{} printed no image directory", script.display()))?;
    Ok(dir)
}

/// The package counts and what v2 adds, from the lists recorded beside the images.
fn print_packages(images: &Path) -> Result<(), Error> {
    let list = |v: &str| -> Result<Vec<String>, Error> {
        let text = std::fs::read_to_string(images.join(format!("{v}.packages")))?;
        Ok(text
            .lines()
            .filter_map(|l| l.split_whitespace().next().map(String::from))
            .collect())
    };
    let (v1, v2) = (list("v1")?, list("v2")?);
    let added: Vec<&str> = v2
        .iter()
        .filter(|p| !v1.contains(p))
        .map(String::as_str)
        .collect();
    println!(
        "v1: Debian 12 minbase, {} packages; v2: {} packages, adding {} ({})",
        v1.len(),
        v2.len(),
        added.len(),
        added.join(" ")
    );
    println!(
        "package lists: {}/v1.packages, v2.packages",
        images.display()
    );
    Ok(())
}

#[expect(
    clippy::too_many_arguments,
    reason = "one call per format in main, each argument a distinct input"
)]
fn measure(
    ctl: &Skerryctl,
    keys: &Path,
    w: &Path,
    v1: &Path,
    v2: &Path,
    format: &str,
    zstd_target: bool,
    patches: bool,
) -> Result<Upgrade, Error> {
    let plain_repo = w.join("repo-whole");
    publish(ctl, keys, &plain_repo, v1, v2, None)?;
    let plain = upgrade_device(ctl, &plain_repo, &w.join("device-whole"), v2)?;
    let plain_bytes = peers::tree_bytes(&plain_repo)?;
    let patches = if patches {
        let repo = w.join("repo-patched");
        publish(ctl, keys, &repo, v1, v2, Some("1.0.0"))?;
        let fetched = upgrade_device(ctl, &repo, &w.join("device-patched"), v2)?;
        let extra = peers::tree_bytes(&repo)? as i64 - plain_bytes as i64;
        Patches::Measured(Patched {
            fetched,
            extra_storage: extra,
        })
    } else {
        Patches::NotOffered
    };
    let image_len = std::fs::metadata(v2)?.len();
    Ok(Upgrade {
        format: format.into(),
        image_len,
        changed_blocks: peers::changed_blocks(v1, v2)?,
        plain,
        plain_repo: plain_bytes,
        patches,
        casync: peers::casync_delta(w, v1, v2)?,
        zstd3: peers::zstd_patch(w, v1, v2, 3)?,
        zstd19: peers::zstd_patch(w, v1, v2, 19)?,
        window_log: peers::window_log(image_len.max(std::fs::metadata(v1)?.len()))?,
        zstd_target,
    })
}

fn publish(
    ctl: &Skerryctl,
    keys: &Path,
    repo: &Path,
    v1: &Path,
    v2: &Path,
    delta_from: Option<&str>,
) -> Result<(), Error> {
    ctl.init(keys, repo)?;
    ctl.add(keys, repo, "1.0.0", v1, None)?;
    ctl.add(keys, repo, "2.0.0", v2, delta_from)?;
    Ok(())
}

/// A device installs 1.0.0 into slot A, then 2.0.0 into slot B with slot A as its
/// seed; what the server sends for the second install is the figure.
fn upgrade_device(ctl: &Skerryctl, repo: &Path, dev: &Path, v2: &Path) -> Result<Fetched, Error> {
    std::fs::create_dir_all(dev)?;
    let server = server::Counting::start(repo.into())?;
    let (state, a, b) = (dev.join("state"), dev.join("slot-a"), dev.join("slot-b"));
    ctl.install(&server.url(), repo, &state, &a, None, "1.0.0")?;
    server.take();
    let report = ctl.install(&server.url(), repo, &state, &b, Some(&a), "2.0.0")?;
    let counted = server.take();
    peers::run(
        Command::new("cmp")
            .arg("-n")
            .arg(std::fs::metadata(v2)?.len().to_string())
            .arg(v2)
            .arg(&b),
    )?;
    std::fs::remove_dir_all(dev)?;
    Ok(Fetched {
        bytes: counted.body_bytes,
        requests: counted.requests,
        reported: report.bytes_fetched,
        chunks_fetched: report.chunks_fetched,
        chunks_reused: report.chunks_reused,
        index_pages: report.index_pages_fetched,
        chunks_patched: report.chunks_patched,
        patch_fallbacks: report.patch_fallbacks,
    })
}
