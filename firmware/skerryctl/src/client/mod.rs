//! The commands that talk to a machine's skerryd over mutual TLS (the machine API,
//! `skerry.machine.v1`). Each chooses its endpoint and client certificate from the
//! client config file `gen secrets` writes.
//!
//! Layout:
//! - `target`: the client config file, contexts, endpoints, connecting;
//! - `exit`: exit codes, gRPC statuses as messages;
//! - `render`: answers as JSON values and table rows;
//! - `configure`: apply-config, confirm-config, patch;
//! - `upgrade`: upgrade (with its progress bar), rollback, reboot, shutdown;
//! - `inspect`: version, health, get, logs, events, services, dependencies.

pub mod configure;
pub mod exit;
pub mod inspect;
pub mod render;
pub mod target;
pub mod upgrade;

use clap::Subcommand;

use crate::output::Output;

/// The commands that talk to a machine.
#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Print this skerryctl's and the machine's versions (daemon, API, release, board,
    /// slot). Reads only.
    #[command(after_help = "Example:\n  skerryctl version --context edge-1-reader")]
    Version(inspect::VersionArgs),
    /// Print every health check's last result and the machine's verdict. Reads only.
    #[command(after_help = "Example:\n  skerryctl health --output json")]
    Health(inspect::HealthArgs),
    /// Send a machine config to the machine, which validates and applies it (or, with
    /// --dry-run, prints the diff and changes nothing).
    #[command(after_help = configure::APPLY_HELP)]
    ApplyConfig(configure::ApplyArgs),
    /// Keep a config applied with --mode try before its timeout reverts it.
    #[command(after_help = "Example:\n  skerryctl confirm-config 7")]
    ConfirmConfig(configure::ConfirmArgs),
    /// Patch a machine config file (strategic merge or RFC 6902 JSON Patch) and apply
    /// the result.
    #[command(after_help = configure::PATCH_HELP)]
    Patch(configure::PatchArgs),
    /// Install a release into the inactive slot and begin its trial, showing progress
    /// (the machine reboots into it next).
    #[command(
        after_help = "Example:\n  skerryctl upgrade --version 1.2.0\n  skerryctl upgrade --output json   # one JSON object per progress message"
    )]
    Upgrade(upgrade::UpgradeArgs),
    /// Mark the booted slot bad and reboot into the last known-good slot.
    #[command(after_help = "Example:\n  skerryctl rollback --reason \"camera service crashes\"")]
    Rollback(upgrade::RollbackArgs),
    /// Reboot the machine.
    #[command(after_help = "Example:\n  skerryctl reboot --context edge-1-operator")]
    Reboot(upgrade::PowerArgs),
    /// Shut the machine down.
    #[command(after_help = "Example:\n  skerryctl shutdown")]
    Shutdown(upgrade::PowerArgs),
    /// Show resources of a type (one with ID), or watch them change. Reads only.
    #[command(after_help = inspect::GET_HELP)]
    Get(inspect::GetArgs),
    /// Print a service's captured output; -f keeps following it. Reads only.
    #[command(after_help = "Example:\n  skerryctl logs web -f --tail 20")]
    Logs(inspect::LogsArgs),
    /// Print the machine's events, oldest first; --watch keeps following them. Reads only.
    #[command(after_help = "Example:\n  skerryctl events --after 41 --watch --output json")]
    Events(inspect::EventsArgs),
    /// List services (reads only), or start, stop or restart one.
    #[command(after_help = "Example:\n  skerryctl services\n  skerryctl services restart web")]
    Services(inspect::ServicesArgs),
    /// Print the controller graph: every controller and the resource types it reads and
    /// writes (--output dot for Graphviz). Reads only.
    #[command(
        after_help = "Example:\n  skerryctl dependencies --output dot | dot -Tsvg > graph.svg"
    )]
    Dependencies(inspect::DependenciesArgs),
}

/// Runs `cmd` on a single-threaded runtime.
pub fn run(cmd: ClientCommand, output: Output) -> anyhow::Result<()> {
    if output == Output::Dot && !matches!(cmd, ClientCommand::Dependencies(_)) {
        return Err(crate::output::no_dot());
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        match cmd {
            ClientCommand::Version(a) => inspect::version(&a, output).await,
            ClientCommand::Health(a) => inspect::health(&a, output).await,
            ClientCommand::ApplyConfig(a) => configure::apply_config(&a, output).await,
            ClientCommand::ConfirmConfig(a) => configure::confirm(&a, output).await,
            ClientCommand::Patch(a) => configure::patch(&a, output).await,
            ClientCommand::Upgrade(a) => upgrade::upgrade(&a, output).await,
            ClientCommand::Rollback(a) => upgrade::rollback(&a, output).await,
            ClientCommand::Reboot(a) => upgrade::reboot(&a, output).await,
            ClientCommand::Shutdown(a) => upgrade::shutdown(&a, output).await,
            ClientCommand::Get(a) => inspect::get(&a, output).await,
            ClientCommand::Logs(a) => inspect::logs(&a, output).await,
            ClientCommand::Events(a) => inspect::events(&a, output).await,
            ClientCommand::Services(a) => inspect::services(&a, output).await,
            ClientCommand::Dependencies(a) => inspect::dependencies(&a, output).await,
        }
    })
}
