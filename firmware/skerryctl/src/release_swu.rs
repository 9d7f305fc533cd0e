//! `skerryctl release swu`: a release as an SWUpdate `.swu` for hawkBit DDI devices that
//! cannot verify TUF (`swupdate`'s suricatta): the image, its `sw-description` with the
//! image's sha256, and a CMS signature over that description by the release's swu key
//! (skerry_release::swu). skerry-server offers a DDI target release V of board B only
//! when `DATA/swu/B/V.swu` exists.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use serde::Serialize;
use skerry_release::swu::{write_swu, SwuSpec};

use crate::output::{emit, Done, Output};

#[derive(Debug, Args)]
pub struct SwuArgs {
    /// The release version, like 1.2.0.
    #[arg(long)]
    pub version: String,
    /// The board the image is for (SWUpdate's hardware compatibility is not checked).
    #[arg(long)]
    pub board: String,
    /// The slot image.
    #[arg(long)]
    pub image: PathBuf,
    /// Where the device's raw handler writes the image, like /dev/mmcblk0p3.
    #[arg(long)]
    pub device: String,
    /// The swu signing key (PEM); swupdate checks with its certificate (`-k`).
    #[arg(long)]
    pub key: PathBuf,
    /// The certificate of that key (PEM).
    #[arg(long)]
    pub cert: PathBuf,
    /// Directory to write VERSION.swu into (for the server: DATA/swu/BOARD/).
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Debug, Serialize)]
struct Written {
    path: PathBuf,
    bytes: u64,
}

pub fn run(args: SwuArgs, output: Output) -> anyhow::Result<()> {
    for (what, path) in [
        ("--image", &args.image),
        ("--key", &args.key),
        ("--cert", &args.cert),
    ] {
        let meta = std::fs::metadata(path)
            .with_context(|| format!("{what} {}: cannot read it", path.display()))?;
        if !meta.is_file() {
            anyhow::bail!("{what} {} is not a file", path.display());
        }
    }
    let spec = SwuSpec {
        version: &args.version,
        board: &args.board,
        image: &args.image,
        device: &args.device,
        key_pem: &args.key,
        cert_pem: &args.cert,
    };
    let path = write_swu(&spec, &args.out).context("writing the .swu")?;
    let bytes = std::fs::metadata(&path)
        .with_context(|| format!("reading back {}", path.display()))?
        .len();
    let words = format!(
        "wrote {} ({bytes} bytes): release {} of {} for SWUpdate devices",
        path.display(),
        args.version,
        args.board
    );
    emit(
        output,
        &Done {
            words,
            fields: Written { path, bytes },
        },
    )
}
