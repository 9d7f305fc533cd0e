//! `skerryctl`: the operator's one tool. This file only wires subcommands to modules.

use clap::{CommandFactory, Parser, Subcommand};

mod boot;
mod boot_report;
mod client;
mod completions;
mod device_args;
mod flash;
mod fleet;
mod gen;
mod gen_config;
mod gen_schema;
mod hints;
mod image;
mod install;
mod output;
mod release;
mod release_push;
mod release_swu;

use output::Output;

const EXAMPLES: &str = "\
Examples:
  skerryctl boot status --store uboot:/boot/uboot.env,redundant
  skerryctl release keygen --out keys && skerryctl release init --keys keys --repo repo
  skerryctl release add --keys keys --repo repo --board rpi4 --version 1.1.0 --image rootfs.img
  skerryctl release push --repo repo --server http://updates:8470 --token-file operator.token
  skerryctl fleet --server http://updates:8470 --token-file operator.token rollouts create \\
      --id rpi4-1.1 --board rpi4 --version 1.1.0 --waves 0:10%,1h:100%
  skerryctl fleet rollouts list --output yaml   (with SKERRY_SERVER, SKERRY_OPERATOR_TOKEN_FILE)
  skerryctl install --repo https://updates.example.com/repo --trusted-root root.json \\
      --board rpi4 --slot /dev/mmcblk0p3 --seed /dev/mmcblk0p2 --output json
  skerryctl completions bash > /etc/bash_completion.d/skerryctl

A new machine: `skerryctl gen secrets --out secrets` (CA, node and client certificates,
secrets/skerryconfig.json), then `skerryctl gen config --secrets secrets --hostname edge-1
--out machine.yaml`, install secrets/{ca.crt,node.crt,node.key} as the machine's pki/, start
skerryd, and `skerryctl apply-config machine.yaml --config secrets/skerryconfig.json`.
Commands that talk to a machine read the client config (--config FILE, $SKERRYCONFIG, or
./skerryconfig.json) and its context (--context NAME); --endpoint overrides its address.

Commands that write: boot init, begin-trial, mark-good, mark-bad and simulate-boot write
the boot store; release keygen, init, add, rotate-root and timestamp write keys or the
repository, release bundle writes its --out file; install writes the slot and the device state (and, with --store, marks the
target slot bad in the boot store before its first byte). boot status only reads.
release push writes the server's repository; fleet list/show/releases read the server,
the other fleet commands change it.
The machine commands that write are apply-config, confirm-config, patch (unless --local),
upgrade, rollback, reboot, shutdown and services start/stop/restart.";

/// The help after the command list: examples, then the exit codes.
fn after_help() -> String {
    format!("{EXAMPLES}\n\n{}", client::exit::EXIT_CODES)
}
#[derive(Debug, Parser)]
#[command(
    name = "skerryctl",
    version,
    about = "Operate Skerry devices and releases",
    after_help = after_help()
)]
struct Cli {
    /// How to report: table (or lines) for people, json for scripts (one document on
    /// stdout; streams one object per line), yaml; dot only for `dependencies`.
    #[arg(long, global = true, value_enum, default_value_t = Output::Text)]
    output: Output,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Offline A/B boot-state commands for manufacturing and debugging (status only
    /// reads; the others write the store).
    #[command(subcommand)]
    Boot(boot::BootCommand),
    /// Keys and the signed release repository (TUF); every release command writes.
    #[command(subcommand)]
    Release(release::ReleaseCommand),
    /// The update server's fleet: releases, rollouts, devices, join tokens (over its
    /// operator API; list/show read, the others write).
    #[command(
        after_help = "Example:\n  skerryctl fleet --server http://127.0.0.1:8470 --token-file operator.token rollouts list"
    )]
    Fleet(fleet::FleetArgs),
    /// Verify a signed release and write it into a slot (delta against a seed); writes
    /// the slot, the device state and, with --store, the boot store.
    #[command(
        after_help = "Example:\n  skerryctl install --repo file:///srv/repo --trusted-root root.json --board rpi4 \\\n      --slot /dev/mmcblk0p3 --seed /dev/mmcblk0p2\nThen: skerryctl boot begin-trial B --store tryboot:/boot/firmware,A=2,B=3"
    )]
    Install(install::InstallArgs),
    /// Generate machine secrets (CA, node and per-role client certificates, client
    /// config), then a machine config for the node (writes only new files).
    #[command(subcommand)]
    Gen(gen::GenCommand),
    /// Build a board's OS image: the slot image and a flashable GPT disk (writes --out).
    #[command(subcommand)]
    Image(image::ImageCommand),
    /// Write a disk image to a block device or file, skipping zeros, verifying by
    /// reading back (writes --to).
    Flash(flash::FlashArgs),
    #[command(flatten)]
    Client(client::ClientCommand),
    /// Print a shell completion script for SHELL (writes nothing).
    #[command(after_help = "Example:\n  skerryctl completions zsh > ~/.zfunc/_skerryctl")]
    Completions(completions::CompletionsArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Boot(cmd) => boot::run(cmd, cli.output),
        Command::Release(cmd) => release::run(cmd, cli.output),
        Command::Fleet(args) => fleet::run(args, cli.output),
        Command::Install(args) => install::run(args, cli.output),
        Command::Gen(cmd) => gen::run(cmd, cli.output),
        Command::Image(cmd) => image::run(cmd, cli.output),
        Command::Flash(args) => flash::run(args, cli.output),
        Command::Client(cmd) => client::run(cmd, cli.output),
        Command::Completions(args) => completions::run(&args, Cli::command()),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("skerryctl: error: {err:#}");
            let mut hints = hints::for_error(&err);
            hints.extend(client::exit::hint(&err));
            for hint in hints {
                eprintln!("  hint: {hint}");
            }
            std::process::ExitCode::from(client::exit::code_of(&err))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every leaf command with its path, like `boot init`.
    fn leaves(command: &clap::Command, path: String, out: &mut Vec<(String, clap::Command)>) {
        for sub in command.get_subcommands() {
            leaves(sub, format!("{path} {}", sub.get_name()), out);
        }
        if command.get_subcommands().next().is_none() {
            out.push((path, command.clone()));
        }
    }

    #[test]
    fn every_argument_has_help_and_every_command_an_example() {
        let mut all = Vec::new();
        leaves(&Cli::command(), "skerryctl".into(), &mut all);
        assert!(all.len() >= 13, "{}", all.len());
        for (path, command) in all {
            for arg in command.get_arguments() {
                let builtin = matches!(arg.get_id().as_str(), "help" | "version");
                assert!(
                    builtin || arg.get_help().is_some(),
                    "{path}: --{} has no help text",
                    arg.get_id()
                );
            }
            let example = command
                .get_after_help()
                .is_some_and(|h| h.to_string().contains("Example"));
            assert!(example, "{path} has no example in its help");
        }
        Cli::command().debug_assert();
    }
}
