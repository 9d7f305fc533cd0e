//! `skerryctl gen config`: a machine config for one node, the second step after
//! `gen secrets`. It writes a multi-document YAML file (MachineConfig, NetworkConfig,
//! TimeConfig, and UpdateConfig / WatchdogConfig when asked for) with defaults that
//! pass the machine's validation, and points at the secrets: the node's TLS material
//! goes into the machine's `pki/`, the client config is what `apply-config` reads.
//!
//! The config is validated here before it is written, and the file is created, never
//! replaced.

use std::fs::OpenOptions;
use std::io::Write as _;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use serde::Serialize;
use skerry_config::kinds::{
    Cidr, Dns, HumanDuration, Identity, Link, MachineConfig, NetworkConfig, Route, Sntp,
    TimeConfig, TimeFloor, UpdateConfig, WatchdogConfig, WatchdogDevice,
};
use skerry_config::Config;

use crate::client::exit::usage;
use crate::gen::CLIENT_CONFIG;
use crate::output::{emit, Done, Output};

/// The help after `gen config`.
pub const CONFIG_HELP: &str = "\
Example (the whole flow):
  skerryctl gen secrets --out secrets --name edge-1.local --ip 10.0.0.5
  skerryctl gen config --secrets secrets --hostname edge-1 --address 10.0.0.5/24 \\
      --gateway 10.0.0.1 --dns 10.0.0.1 --repository https://updates.example.com/repo \\
      --board rpi4 --watchdog /dev/watchdog0 --out edge-1.yaml
  # install secrets/ca.crt, node.crt, node.key as the machine's pki/ (skerryd --root DIR
  # reads DIR/pki/, so `gen secrets --out DIR/pki` puts them there), start skerryd, then:
  skerryctl apply-config edge-1.yaml --config secrets/skerryconfig.json --dry-run

Without --address the link asks DHCP. The file is validated before it is written and
never replaces an existing one.";

/// Files `gen secrets` writes that this step relies on.
const SECRETS: &[&str] = &["ca.crt", "node.crt", "node.key", CLIENT_CONFIG];
/// The most --address, --dns and --sntp values each.
pub const MAX_VALUES: usize = 16;

/// Arguments of `gen config`.
#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// The directory `gen secrets --out` wrote (checked for the node's TLS material and
    /// the client config).
    #[arg(long, value_name = "DIR")]
    secrets: PathBuf,
    /// The machine's hostname (RFC 1123).
    #[arg(long)]
    hostname: String,
    /// Where to write the machine config (never replaced).
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// A stable machine id for the fleet (default: the board serial).
    #[arg(long)]
    machine_id: Option<String>,
    /// Where the machine stands (free text).
    #[arg(long)]
    site: Option<String>,
    /// The network interface to configure.
    #[arg(long, default_value = "eth0")]
    link: String,
    /// A static address in CIDR form (repeatable; default: DHCP).
    #[arg(long = "address", value_name = "CIDR")]
    addresses: Vec<Cidr>,
    /// The default route's gateway.
    #[arg(long, value_name = "IP")]
    gateway: Option<IpAddr>,
    /// A name server (repeatable, at most 3).
    #[arg(long = "dns", value_name = "IP")]
    dns: Vec<IpAddr>,
    /// An SNTP server (repeatable; default pool.ntp.org).
    #[arg(long = "sntp", value_name = "HOST")]
    sntp: Vec<String>,
    /// The signed update repository (adds an UpdateConfig; needs --board).
    #[arg(long, value_name = "URL")]
    repository: Option<String>,
    /// The trusted TUF root's path on the machine.
    #[arg(long, default_value = "/var/lib/skerry/root.json", value_name = "PATH")]
    trusted_root: String,
    /// The board releases are built for (with --repository).
    #[arg(long)]
    board: Option<String>,
    /// The release channel (with --repository).
    #[arg(long, default_value = "stable")]
    channel: String,
    /// How long a new slot's critical checks must pass before it is committed.
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
    probation: Duration,
    /// A Linux watchdog device to arm (adds a WatchdogConfig), e.g. /dev/watchdog0.
    #[arg(long, value_name = "DEVICE")]
    watchdog: Option<String>,
    /// The watchdog timeout.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    watchdog_timeout: Duration,
}

#[derive(Debug, Serialize)]
struct ConfigReport {
    out: PathBuf,
    kinds: Vec<String>,
    pki: Vec<PathBuf>,
    client_config: PathBuf,
}

/// Builds the config the arguments describe.
fn build(args: &ConfigArgs) -> anyhow::Result<Config> {
    for (flag, n) in [
        ("--address", args.addresses.len()),
        ("--dns", args.dns.len()),
        ("--sntp", args.sntp.len()),
    ] {
        if n > MAX_VALUES {
            return Err(usage(format!(
                "at most {MAX_VALUES} {flag} values (got {n})"
            )));
        }
    }
    let link = Link {
        name: args.link.clone(),
        dhcp: args.addresses.is_empty(),
        addresses: args.addresses.clone(),
        mtu: None,
    };
    let routes = args
        .gateway
        .map(|gateway| {
            let destination = if gateway.is_ipv4() {
                "0.0.0.0/0"
            } else {
                "::/0"
            };
            destination.parse().map(|destination| Route {
                destination,
                gateway,
                link: Some(args.link.clone()),
                metric: None,
            })
        })
        .transpose()
        .map_err(|e: String| anyhow::anyhow!(e))?
        .into_iter()
        .collect();
    let update = match (&args.repository, &args.board) {
        (Some(repository), Some(board)) => Some(UpdateConfig {
            repository: repository.clone(),
            trusted_root: args.trusted_root.clone(),
            board: board.clone(),
            channel: args.channel.clone(),
            probation: HumanDuration(args.probation),
        }),
        (Some(_), None) => {
            return Err(usage(
                "--repository needs --board (the board releases are built for)",
            ))
        }
        (None, _) => None,
    };
    let watchdog = args.watchdog.as_ref().map(|path| WatchdogConfig {
        device: WatchdogDevice::Linux { path: path.clone() },
        timeout: HumanDuration(args.watchdog_timeout),
        gate: Vec::new(),
    });
    Ok(Config {
        machine: Some(MachineConfig {
            hostname: args.hostname.clone(),
            identity: Identity {
                machine_id: args.machine_id.clone(),
                site: args.site.clone(),
                labels: Default::default(),
            },
        }),
        network: Some(NetworkConfig {
            links: vec![link],
            routes,
            dns: Dns {
                servers: args.dns.clone(),
                search: Vec::new(),
            },
        }),
        time: Some(TimeConfig {
            sntp: Sntp {
                servers: if args.sntp.is_empty() {
                    vec!["pool.ntp.org".into()]
                } else {
                    args.sntp.clone()
                },
                ..Sntp::default()
            },
            floor: TimeFloor::default(),
        }),
        services: Vec::new(),
        watchdog,
        update,
        // Fleet membership is per deployment; `gen-config` writes none.
        fleet: None,
    })
}

/// The config as written: a comment naming the flow, then the canonical YAML.
fn render(args: &ConfigArgs, config: &Config) -> String {
    format!(
        "# Machine config for {}, written by `skerryctl gen config`.\n\
         # Apply: skerryctl apply-config FILE --config {}\n{}",
        args.hostname,
        args.secrets.join(CLIENT_CONFIG).display(),
        config.to_yaml()
    )
}

/// Runs `gen config`.
pub fn run(args: &ConfigArgs, output: Output) -> anyhow::Result<()> {
    let missing: Vec<&str> = SECRETS
        .iter()
        .copied()
        .filter(|name| !args.secrets.join(name).is_file())
        .collect();
    if !missing.is_empty() {
        return Err(usage(format!(
            "{} lacks {}: run `skerryctl gen secrets --out {}` first",
            args.secrets.display(),
            missing.join(", "),
            args.secrets.display()
        )));
    }
    let config = build(args)?;
    if let Err(problems) = skerry_config::validate(&config, None) {
        return Err(usage(format!(
            "the options give an invalid machine config: {problems}"
        )));
    }
    let text = render(args, &config);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&args.out)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => usage(format!(
                "{} already exists: gen config never replaces a config (choose another --out)",
                args.out.display()
            )),
            _ => anyhow::Error::new(e).context(format!("creating {}", args.out.display())),
        })?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", args.out.display()))?;
    let kinds: Vec<String> = config
        .documents()
        .iter()
        .filter_map(|d| d["kind"].as_str().map(str::to_owned))
        .collect();
    let report = ConfigReport {
        out: args.out.clone(),
        kinds: kinds.clone(),
        pki: ["ca.crt", "node.crt", "node.key"]
            .iter()
            .map(|n| args.secrets.join(n))
            .collect(),
        client_config: args.secrets.join(CLIENT_CONFIG),
    };
    let words = format!(
        "wrote {} ({}). Install {}/ca.crt, node.crt and node.key as the machine's pki/, then: skerryctl apply-config {} --config {}",
        args.out.display(),
        kinds.join(", "),
        args.secrets.display(),
        args.out.display(),
        report.client_config.display()
    );
    emit(
        output,
        &Done {
            words,
            fields: report,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Wrapper {
        #[command(flatten)]
        args: ConfigArgs,
    }

    fn args(extra: &[&str]) -> ConfigArgs {
        let mut all = vec!["x", "--secrets", "s", "--hostname", "edge-1", "--out", "o"];
        all.extend_from_slice(extra);
        Wrapper::parse_from(all).args
    }

    #[test]
    fn defaults_validate_and_decode_back_to_the_same_config() {
        for extra in [
            &[][..],
            &[
                "--address",
                "10.0.0.5/24",
                "--gateway",
                "10.0.0.1",
                "--dns",
                "10.0.0.1",
                "--repository",
                "https://updates.example.com/repo",
                "--board",
                "rpi4",
                "--watchdog",
                "/dev/watchdog0",
            ][..],
        ] {
            let a = args(extra);
            let config = build(&a).unwrap();
            skerry_config::validate(&config, None).unwrap();
            let text = render(&a, &config);
            let decoded = skerry_config::decode(&text).unwrap();
            assert_eq!(decoded, config);
            skerry_config::validate(&decoded, None).unwrap();
        }
    }

    #[test]
    fn update_and_watchdog_only_when_asked() {
        let plain = build(&args(&[])).unwrap();
        assert!(plain.update.is_none() && plain.watchdog.is_none());
        assert!(plain.network.unwrap().links[0].dhcp);
        let full = build(&args(&[
            "--repository",
            "file:///srv/repo",
            "--board",
            "rpi4",
            "--watchdog",
            "/dev/watchdog0",
        ]))
        .unwrap();
        assert_eq!(full.update.unwrap().board, "rpi4");
        assert_eq!(full.watchdog.unwrap().timeout, HumanDuration::secs(30));
        let err = build(&args(&["--repository", "file:///srv/repo"])).unwrap_err();
        assert!(err.to_string().contains("--board"), "{err}");
    }
}
