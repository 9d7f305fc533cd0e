//! `skerryctl flash`: placeholder until the flasher lands.

use crate::output::Output;

#[derive(Debug, clap::Args)]
#[command(after_help = "Example:\n  skerryctl flash --image disk.img --to /dev/sdb")]
pub struct FlashArgs {
    /// The disk image to write.
    #[arg(long)]
    image: std::path::PathBuf,
}

pub fn run(args: FlashArgs, _output: Output) -> anyhow::Result<()> {
    anyhow::bail!("flash {}: not built yet", args.image.display())
}
