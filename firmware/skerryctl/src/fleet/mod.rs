//! `skerryctl fleet …`: the update server's operator API (the one the dashboard reads):
//! releases, rollouts, devices and join tokens. JSON and YAML print the server's answer
//! as it came; the table form is [`render`].
//!
//! # Layout
//! - [`http`]: the API client (bearer token, server messages with their HTTP status).
//! - [`render`]: tables for people.

pub mod http;
pub mod render;

use clap::Subcommand;
use serde_json::{json, Value};

use crate::output::{value, Output};
use http::{Server, ServerArgs};

#[derive(Debug, clap::Args)]
pub struct FleetArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    #[command(subcommand)]
    pub command: FleetCommand,
}

#[derive(Debug, Subcommand)]
pub enum FleetCommand {
    /// The releases the server's repository holds (reads).
    #[command(
        after_help = "Example:\n  skerryctl fleet --server http://127.0.0.1:8470 --token-file operator.token releases"
    )]
    Releases,
    /// Rollouts: list, create, pause, resume, abort.
    #[command(subcommand)]
    Rollouts(RolloutCommand),
    /// Devices: list, show (with timeline), pin, unpin, revoke.
    #[command(subcommand)]
    Devices(DeviceCommand),
    /// Join tokens: list, create (the secret is shown once), revoke.
    #[command(subcommand)]
    Tokens(TokenCommand),
}

#[derive(Debug, Subcommand)]
pub enum RolloutCommand {
    /// Every rollout with its state, pause reason and per-wave counts (reads).
    #[command(after_help = "Example:\n  skerryctl fleet rollouts list --output json")]
    List,
    /// Starts rolling a release out (writes).
    #[command(
        after_help = "Example:\n  skerryctl fleet rollouts create --id pi-2.0 --board pi --version 2.0.0 --waves 0:10%,1h:50%,1d:100% --max-bad 5%"
    )]
    Create {
        /// The rollout's name.
        #[arg(long)]
        id: String,
        /// The board the release is for.
        #[arg(long)]
        board: String,
        /// The release's version (it must be in the repository).
        #[arg(long)]
        version: String,
        /// The channel it goes out on.
        #[arg(long, default_value = "stable")]
        channel: String,
        /// Waves as AFTER:PERCENT, comma-separated, like 0:10%,1h:100%.
        #[arg(long, default_value = "0:100%")]
        waves: String,
        /// Pause by itself when this share of a wave's devices fail or roll back.
        #[arg(long, default_value = "20%")]
        max_bad: String,
        /// Reports a wave needs before its failure rate counts.
        #[arg(long, default_value_t = 1)]
        min_sample: u32,
        /// Offer it also to devices that rolled back from it.
        #[arg(long)]
        force: bool,
    },
    /// Pauses a rollout (writes).
    #[command(
        after_help = "Example:\n  skerryctl fleet rollouts pause pi-2.0 --note \"waiting for the field report\""
    )]
    Pause {
        /// The rollout.
        id: String,
        /// Why (shown as the pause reason).
        #[arg(long)]
        note: Option<String>,
    },
    /// Resumes a paused rollout (writes).
    #[command(after_help = "Example:\n  skerryctl fleet rollouts resume pi-2.0")]
    Resume {
        /// The rollout.
        id: String,
    },
    /// Stops a rollout for good (writes).
    #[command(after_help = "Example:\n  skerryctl fleet rollouts abort pi-2.0")]
    Abort {
        /// The rollout.
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum DeviceCommand {
    /// One page of devices (reads).
    #[command(after_help = "Example:\n  skerryctl fleet devices list --limit 50 --after sim-049")]
    List {
        /// Start after this device id (the page before printed it as next).
        #[arg(long)]
        after: Option<String>,
        /// Devices per page.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// One device with its upgrade timeline (reads).
    #[command(after_help = "Example:\n  skerryctl fleet devices show sim-01")]
    Show {
        /// The device.
        id: String,
    },
    /// Pins a device to a release: it is offered that and nothing else (writes).
    #[command(after_help = "Example:\n  skerryctl fleet devices pin sim-01 1.0.0")]
    Pin {
        /// The device.
        id: String,
        /// The release's version.
        version: String,
        /// Offer it even if the device rolled back from it.
        #[arg(long)]
        force: bool,
    },
    /// Clears a device's pin (writes).
    #[command(after_help = "Example:\n  skerryctl fleet devices unpin sim-01")]
    Unpin {
        /// The device.
        id: String,
    },
    /// Revokes a device: its certificate is refused from now on (writes).
    #[command(after_help = "Example:\n  skerryctl fleet devices revoke sim-01")]
    Revoke {
        /// The device.
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Every join token with its state; secrets are never listed (reads).
    #[command(after_help = "Example:\n  skerryctl fleet tokens list")]
    List,
    /// Makes a join token and prints it, the only time its secret is shown (writes).
    #[command(
        after_help = "Example:\n  skerryctl fleet tokens create --uses 10 --ttl 2h --label site=mine-7"
    )]
    Create {
        /// How many devices may enroll with it.
        #[arg(long, default_value_t = 1)]
        uses: u32,
        /// How long it lasts, like 24h or 30d.
        #[arg(long, default_value = "24h")]
        ttl: String,
        /// key=value given to devices enrolled with it; repeat for several.
        #[arg(long)]
        label: Vec<String>,
    },
    /// Revokes a join token (writes).
    #[command(after_help = "Example:\n  skerryctl fleet tokens revoke 3f9c0a1b2c3d4e5f")]
    Revoke {
        /// The token's id (the part before the dot).
        id: String,
    },
}

/// Path segments from the command line go into URLs: keep them to what ids allow.
fn seg(what: &str, id: &str) -> anyhow::Result<String> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(id.to_string())
    } else {
        Err(crate::client::exit::usage(format!(
            "{what} {id:?}: give 1 to 128 characters of A-Z a-z 0-9 . _ -"
        )))
    }
}

pub fn run(args: FleetArgs, output: Output) -> anyhow::Result<()> {
    let s = Server::connect(&args.server)?;
    let (answer, text): (Value, fn(&Value) -> String) = match args.command {
        FleetCommand::Releases => (s.call("GET", "releases", None)?, render::releases),
        FleetCommand::Rollouts(cmd) => rollouts(&s, cmd)?,
        FleetCommand::Devices(cmd) => devices(&s, cmd)?,
        FleetCommand::Tokens(cmd) => tokens(&s, cmd)?,
    };
    value(output, &answer, || text(&answer))
}

type Answer = (Value, fn(&Value) -> String);

fn rollouts(s: &Server, cmd: RolloutCommand) -> anyhow::Result<Answer> {
    Ok(match cmd {
        RolloutCommand::List => (s.call("GET", "rollouts", None)?, render::rollouts),
        RolloutCommand::Create {
            id,
            board,
            version,
            channel,
            waves,
            max_bad,
            min_sample,
            force,
        } => {
            let body = json!({"id": id, "board": board, "version": version, "channel": channel,
                "waves": waves, "max_bad": max_bad, "min_sample": min_sample, "force": force});
            (s.call("POST", "rollouts", Some(&body))?, render::done)
        }
        RolloutCommand::Pause { id, note } => {
            let body = json!({"note": note.unwrap_or_default()});
            let path = format!("rollouts/{}/pause", seg("rollout", &id)?);
            (s.call("POST", &path, Some(&body))?, render::done)
        }
        RolloutCommand::Resume { id } => {
            let path = format!("rollouts/{}/resume", seg("rollout", &id)?);
            (s.call("POST", &path, Some(&json!({})))?, render::done)
        }
        RolloutCommand::Abort { id } => {
            let path = format!("rollouts/{}/abort", seg("rollout", &id)?);
            (s.call("POST", &path, Some(&json!({})))?, render::done)
        }
    })
}

fn devices(s: &Server, cmd: DeviceCommand) -> anyhow::Result<Answer> {
    Ok(match cmd {
        DeviceCommand::List { after, limit } => {
            let mut path = format!("devices?limit={limit}");
            if let Some(a) = after {
                path.push_str(&format!("&after={}", seg("--after", &a)?));
            }
            (s.call("GET", &path, None)?, render::devices)
        }
        DeviceCommand::Show { id } => {
            let path = format!("devices/{}", seg("device", &id)?);
            (s.call("GET", &path, None)?, render::device)
        }
        DeviceCommand::Pin { id, version, force } => {
            let path = format!("devices/{}/pin", seg("device", &id)?);
            let body = json!({"version": version, "force": force});
            (s.call("PUT", &path, Some(&body))?, render::done)
        }
        DeviceCommand::Unpin { id } => {
            let path = format!("devices/{}/pin", seg("device", &id)?);
            (s.call("DELETE", &path, None)?, render::done)
        }
        DeviceCommand::Revoke { id } => {
            let path = format!("devices/{}/revoke", seg("device", &id)?);
            (s.call("POST", &path, Some(&json!({})))?, render::done)
        }
    })
}

fn tokens(s: &Server, cmd: TokenCommand) -> anyhow::Result<Answer> {
    Ok(match cmd {
        TokenCommand::List => (s.call("GET", "tokens", None)?, render::tokens),
        TokenCommand::Create { uses, ttl, label } => {
            let body = json!({"uses": uses, "ttl": ttl, "labels": label});
            (s.call("POST", "tokens", Some(&body))?, render::token_made)
        }
        TokenCommand::Revoke { id } => {
            let path = format!("tokens/{}/revoke", seg("token", &id)?);
            (s.call("POST", &path, Some(&json!({})))?, render::done)
        }
    })
}
