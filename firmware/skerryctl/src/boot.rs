//! `skerryctl boot …` (filled in by the boot-state work).

use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum BootCommand {
    /// Print the boot state.
    Status,
}

pub fn run(cmd: BootCommand) -> anyhow::Result<()> {
    match cmd {
        BootCommand::Status => anyhow::bail!("no store backends yet"),
    }
}
