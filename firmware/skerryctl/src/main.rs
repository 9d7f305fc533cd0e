//! `skerryctl`: the operator's one tool. This file only wires subcommands to modules.

use clap::{Parser, Subcommand};

mod boot;
mod install;
mod release;

#[derive(Debug, Parser)]
#[command(
    name = "skerryctl",
    version,
    about = "Operate Skerry devices and releases"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Offline A/B boot-state commands for manufacturing and debugging.
    #[command(subcommand)]
    Boot(boot::BootCommand),
    /// Keys and the signed release repository (TUF).
    #[command(subcommand)]
    Release(release::ReleaseCommand),
    /// Verify a signed release and write it into a slot (delta against a seed).
    Install(install::InstallArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Boot(cmd) => boot::run(cmd),
        Command::Release(cmd) => release::run(cmd),
        Command::Install(args) => install::run(args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("skerryctl: error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
