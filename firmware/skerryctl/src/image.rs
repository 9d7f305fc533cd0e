//! `skerryctl image build`: wiring to `skerry-image` (boards/image). Placeholder until
//! the builder lands.

use crate::output::Output;

#[derive(Debug, clap::Subcommand)]
pub enum ImageCommand {
    /// Build the slot image and the flashable disk for a board.
    #[command(
        after_help = "Example:\n  skerryctl image build --board qemu-x86_64 --version 1.0.0 --out disk.img"
    )]
    Build {
        /// The board definition's name.
        #[arg(long)]
        board: String,
    },
}

pub fn run(cmd: ImageCommand, _output: Output) -> anyhow::Result<()> {
    match cmd {
        ImageCommand::Build { board } => anyhow::bail!("image build for {board}: not built yet"),
    }
}
