//! `skerryctl gen secrets`: the PKI of one machine's API. A machine CA, the node's
//! server certificate (for the names and addresses clients reach it by), one client
//! certificate per role (the role is the subject Organization, as the API reads it)
//! and a client config file with one context per role.
//!
//! Everything is generated in memory first; then the files are created, never
//! overwritten, so a second run cannot replace a CA that devices already trust. Keys
//! are written readable by their owner only.

use std::fs::OpenOptions;
use std::io::Write as _;
use std::net::IpAddr;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context as _};
use clap::{Args, Subcommand};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use serde::{Deserialize, Serialize};
use skerry_api::Role;

use crate::output::{emit, Done, Output};

/// The most names and addresses one node certificate carries.
const MAX_SANS: usize = 64;
/// Certificates start this long before now, so a clock a little behind still accepts them.
const BACKDATE: Duration = Duration::from_secs(60 * 60);
/// The client config file's name inside `--out`.
pub const CLIENT_CONFIG: &str = "skerryconfig.json";
/// The version of the client config file's format.
pub const CLIENT_CONFIG_VERSION: u32 = 1;

#[derive(Debug, Subcommand)]
pub enum GenCommand {
    /// Generate a machine CA, the node certificate, one client certificate per role
    /// and a client config file into --out (writes only new files).
    #[command(
        after_help = "Example:\n  skerryctl gen secrets --out secrets --name edge-1.local --ip 10.0.0.5 \\\n      --endpoint https://10.0.0.5:50000"
    )]
    Secrets(SecretsArgs),
    /// Print the machine config's JSON Schema, generated from the config types (writes
    /// nothing unless --out is given).
    #[command(after_help = "Example:\n  skerryctl gen schema --out machine-config.schema.json")]
    Schema(crate::gen_schema::SchemaArgs),
    /// Write a machine config for a node (hostname, network, time; updates and the
    /// watchdog when asked), after `gen secrets` (writes only a new file).
    #[command(after_help = crate::gen_config::CONFIG_HELP)]
    Config(Box<crate::gen_config::ConfigArgs>),
}

#[derive(Debug, Args)]
pub struct SecretsArgs {
    /// Directory to write into (created if missing; existing files are never replaced).
    #[arg(long)]
    out: PathBuf,
    /// A DNS name clients reach the node by (repeatable; default localhost).
    #[arg(long = "name")]
    names: Vec<String>,
    /// An IP address clients reach the node by (repeatable; default 127.0.0.1).
    #[arg(long = "ip")]
    ips: Vec<IpAddr>,
    /// An API endpoint for the client config (repeatable; default https://FIRST:50000
    /// for the first --ip, or the first --name).
    #[arg(long = "endpoint")]
    endpoints: Vec<String>,
    /// The machine's name in the client config; contexts are NAME-admin, NAME-operator,
    /// NAME-reader.
    #[arg(long, default_value = "skerry")]
    context: String,
    /// How long the client and node certificates are valid (the CA: ten times as long).
    #[arg(long, default_value = "365d", value_parser = humantime::parse_duration)]
    valid_for: Duration,
}

pub fn run(cmd: GenCommand, output: Output) -> anyhow::Result<()> {
    match cmd {
        GenCommand::Secrets(args) => secrets(&args, output),
        GenCommand::Schema(args) => crate::gen_schema::run(&args),
        GenCommand::Config(args) => crate::gen_config::run(&args, output),
    }
}

/// A context of the client config: where to connect and with which certificate.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClientContext {
    pub name: String,
    pub role: String,
    pub endpoints: Vec<String>,
    /// The name the node certificate must carry (TLS server name).
    pub server_name: String,
    /// Paths relative to the config file.
    pub ca: String,
    pub cert: String,
    pub key: String,
}

/// The client config file (`skerryconfig.json`): contexts and the one used by default.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClientConfig {
    pub version: u32,
    pub current_context: String,
    pub contexts: Vec<ClientContext>,
}

#[derive(Debug, Serialize)]
struct SecretsReport {
    out: PathBuf,
    files: Vec<String>,
    client_config: String,
    contexts: Vec<String>,
}

/// One file to write: its name in `--out`, its text, whether it is a secret.
struct Planned {
    name: String,
    text: String,
    secret: bool,
}

fn secrets(args: &SecretsArgs, output: Output) -> anyhow::Result<()> {
    let sans = node_sans(args)?;
    let endpoints = endpoints(args)?;
    check_context_name(&args.context)?;
    let planned = plan(args, &sans, &endpoints)?;
    write_all(&args.out, &planned)?;
    let report = SecretsReport {
        out: args.out.clone(),
        files: planned.iter().map(|p| p.name.clone()).collect(),
        client_config: CLIENT_CONFIG.to_owned(),
        contexts: Role::ALL
            .iter()
            .rev()
            .map(|r| context_name(&args.context, *r))
            .collect(),
    };
    let words = format!(
        "wrote the machine CA, the node certificate and {} client certificates to {}; client config {}/{}. Keep ca.key offline.",
        Role::ALL.len(),
        args.out.display(),
        args.out.display(),
        CLIENT_CONFIG,
    );
    emit(
        output,
        &Done {
            words,
            fields: report,
        },
    )
}

fn role_file(role: Role) -> &'static str {
    match role {
        Role::Admin => "admin",
        Role::Operator => "operator",
        Role::Reader => "reader",
    }
}

fn context_name(machine: &str, role: Role) -> String {
    format!("{machine}-{}", role_file(role))
}

fn check_context_name(name: &str) -> anyhow::Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.');
    if !ok {
        bail!("--context {name:?} must be 1 to 63 letters, digits, '-', '_' or '.'");
    }
    Ok(())
}

fn node_sans(args: &SecretsArgs) -> anyhow::Result<Vec<SanType>> {
    let names = if args.names.is_empty() && args.ips.is_empty() {
        vec!["localhost".to_owned()]
    } else {
        args.names.clone()
    };
    let ips = if args.names.is_empty() && args.ips.is_empty() {
        vec![IpAddr::from([127, 0, 0, 1])]
    } else {
        args.ips.clone()
    };
    if names.len() + ips.len() > MAX_SANS {
        bail!(
            "at most {MAX_SANS} --name and --ip values in all (got {})",
            names.len() + ips.len()
        );
    }
    let mut sans = Vec::new();
    for name in &names {
        let valid = !name.is_empty()
            && name.len() <= 253
            && name.split('.').all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            });
        if !valid {
            bail!("--name {name:?} is not a DNS name (letters, digits and '-' in dot-separated labels)");
        }
        let ia5 = name
            .as_str()
            .try_into()
            .with_context(|| format!("--name {name:?} is not a DNS name"))?;
        sans.push(SanType::DnsName(ia5));
    }
    sans.extend(ips.into_iter().map(SanType::IpAddress));
    Ok(sans)
}

/// The TLS server name a client should expect: the first DNS name, else the first IP.
fn server_name(sans: &[SanType]) -> String {
    sans.iter()
        .find_map(|s| match s {
            SanType::DnsName(n) => Some(n.as_str().to_owned()),
            _ => None,
        })
        .or_else(|| {
            sans.iter().find_map(|s| match s {
                SanType::IpAddress(ip) => Some(ip.to_string()),
                _ => None,
            })
        })
        .unwrap_or_default()
}

fn endpoints(args: &SecretsArgs) -> anyhow::Result<Vec<String>> {
    if args.endpoints.is_empty() {
        let host = match (args.ips.first(), args.names.first()) {
            (Some(IpAddr::V6(ip)), _) => format!("[{ip}]"),
            (Some(ip), _) => ip.to_string(),
            (None, Some(name)) => name.clone(),
            (None, None) => "127.0.0.1".to_owned(),
        };
        return Ok(vec![format!("https://{host}:{}", skerry_api::DEFAULT_PORT)]);
    }
    for endpoint in &args.endpoints {
        if !endpoint.starts_with("https://") || endpoint.len() <= "https://".len() {
            bail!(
                "--endpoint {endpoint:?} must be an https:// address, e.g. https://10.0.0.5:{}",
                skerry_api::DEFAULT_PORT
            );
        }
    }
    Ok(args.endpoints.clone())
}

fn validity(params: &mut CertificateParams, valid_for: Duration) -> anyhow::Result<()> {
    let now = time::OffsetDateTime::now_utc();
    let valid_for = time::Duration::try_from(valid_for)
        .ok()
        .and_then(|d| now.checked_add(d))
        .context("--valid-for is too long")?;
    params.not_before = now - BACKDATE;
    params.not_after = valid_for;
    Ok(())
}

fn plan(
    args: &SecretsArgs,
    sans: &[SanType],
    endpoints: &[String],
) -> anyhow::Result<Vec<Planned>> {
    let ca_valid_for = args
        .valid_for
        .checked_mul(10)
        .context("--valid-for is too long")?;
    let mut ca_params = CertificateParams::default();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params
        .distinguished_name
        .push(DnType::CommonName, format!("{} machine CA", args.context));
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    validity(&mut ca_params, ca_valid_for)?;
    let ca_key = KeyPair::generate().context("generating the CA key")?;
    let ca_cert = ca_params
        .self_signed(&ca_key)
        .context("signing the CA certificate")?;
    let ca_pem = ca_cert.pem();
    let issuer = Issuer::new(ca_params, ca_key);

    let mut planned = vec![
        Planned {
            name: "ca.crt".into(),
            text: ca_pem,
            secret: false,
        },
        Planned {
            name: "ca.key".into(),
            text: issuer.key().serialize_pem(),
            secret: true,
        },
    ];

    let mut node = CertificateParams::default();
    node.subject_alt_names = sans.to_vec();
    node.distinguished_name
        .push(DnType::CommonName, server_name(sans));
    node.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    node.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    validity(&mut node, args.valid_for)?;
    let node_key = KeyPair::generate().context("generating the node key")?;
    let node_cert = node
        .signed_by(&node_key, &issuer)
        .context("signing the node certificate")?;
    planned.push(Planned {
        name: "node.crt".into(),
        text: node_cert.pem(),
        secret: false,
    });
    planned.push(Planned {
        name: "node.key".into(),
        text: node_key.serialize_pem(),
        secret: true,
    });

    let mut contexts = Vec::new();
    for role in Role::ALL.into_iter().rev() {
        let mut client = CertificateParams::default();
        client
            .distinguished_name
            .push(DnType::CommonName, context_name(&args.context, role));
        client
            .distinguished_name
            .push(DnType::OrganizationName, role.organization());
        client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        client.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        validity(&mut client, args.valid_for)?;
        let key = KeyPair::generate().context("generating a client key")?;
        let cert = client
            .signed_by(&key, &issuer)
            .with_context(|| format!("signing the {role} client certificate"))?;
        let base = role_file(role);
        planned.push(Planned {
            name: format!("{base}.crt"),
            text: cert.pem(),
            secret: false,
        });
        planned.push(Planned {
            name: format!("{base}.key"),
            text: key.serialize_pem(),
            secret: true,
        });
        contexts.push(ClientContext {
            name: context_name(&args.context, role),
            role: role.organization().to_owned(),
            endpoints: endpoints.to_vec(),
            server_name: server_name(sans),
            ca: "ca.crt".into(),
            cert: format!("{base}.crt"),
            key: format!("{base}.key"),
        });
    }
    let config = ClientConfig {
        version: CLIENT_CONFIG_VERSION,
        current_context: context_name(&args.context, Role::Admin),
        contexts,
    };
    let mut text = serde_json::to_string_pretty(&config)?;
    text.push('\n');
    // The config names key files, so it is as private as they are.
    planned.push(Planned {
        name: CLIENT_CONFIG.into(),
        text,
        secret: true,
    });
    Ok(planned)
}

/// Creates every planned file, refusing before the first write if any exists.
fn write_all(out: &Path, planned: &[Planned]) -> anyhow::Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let existing: Vec<_> = planned
        .iter()
        .filter(|p| out.join(&p.name).exists())
        .map(|p| p.name.as_str())
        .collect();
    if !existing.is_empty() {
        bail!(
            "{} already holds {}: gen secrets never replaces secrets (choose another --out)",
            out.display(),
            existing.join(", ")
        );
    }
    for file in planned {
        let path = out.join(&file.name);
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(if file.secret { 0o600 } else { 0o644 })
            .open(&path)
            .with_context(|| format!("creating {}", path.display()))?;
        f.write_all(file.text.as_bytes())
            .and_then(|()| f.sync_all())
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
