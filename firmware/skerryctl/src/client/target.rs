//! Which machine to talk to and as whom: the client config file (`--config FILE`, else
//! `$SKERRYCONFIG`, else `./skerryconfig.json`), one of its contexts (`--context NAME`,
//! else its `current_context`), and the endpoints to try (`--endpoint` replaces the
//! context's). Connecting tries each endpoint in order.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use skerry_api::pb::machine_service_client::MachineServiceClient;
use skerry_api::ClientTls;
use tonic::transport::Channel;

use super::exit::{usage, Unreachable};
use crate::gen::{ClientConfig, ClientContext, CLIENT_CONFIG, CLIENT_CONFIG_VERSION};

/// The environment variable naming the client config file.
pub const CONFIG_ENV: &str = "SKERRYCONFIG";
/// The most bytes of a client config file, certificate or key read.
pub const MAX_CLIENT_FILE: u64 = 256 * 1024;
/// How long one endpoint may take to accept the connection and the TLS handshake.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The most endpoints one context may list.
pub const MAX_ENDPOINTS: usize = 16;

/// The options every command that talks to a machine takes.
#[derive(Debug, Clone, Args)]
pub struct Target {
    /// The client config file (default: $SKERRYCONFIG, else ./skerryconfig.json, as
    /// `gen secrets` writes it).
    #[arg(long = "config", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The context to use (default: the file's current_context).
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
    /// Connect here instead of the context's endpoints (https://HOST:PORT).
    #[arg(long, value_name = "URL")]
    pub endpoint: Option<String>,
}

/// A resolved target: the context chosen and its TLS material, read.
#[derive(Debug)]
pub struct Resolved {
    /// The context's name.
    pub context: String,
    /// Endpoints to try, in order.
    pub endpoints: Vec<String>,
    /// The client side of mutual TLS.
    pub tls: ClientTls,
}

impl Target {
    /// This target, with each option it leaves out taken from `outer` (for
    /// `services --context X start ID`).
    pub fn or(&self, outer: &Target) -> Target {
        Target {
            config: self.config.clone().or_else(|| outer.config.clone()),
            context: self.context.clone().or_else(|| outer.context.clone()),
            endpoint: self.endpoint.clone().or_else(|| outer.endpoint.clone()),
        }
    }

    /// The client config file this target reads.
    pub fn config_path(&self) -> PathBuf {
        self.config
            .clone()
            .or_else(|| std::env::var_os(CONFIG_ENV).map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from(CLIENT_CONFIG))
    }

    /// Reads the client config and the chosen context's certificates.
    pub fn resolve(&self) -> anyhow::Result<Resolved> {
        let path = self.config_path();
        let config = read_config(&path)?;
        let context = pick(&config, self.context.as_deref(), &path)?;
        let endpoints = match &self.endpoint {
            Some(e) => vec![e.clone()],
            None => context.endpoints.clone(),
        };
        check_endpoints(&endpoints, &context.name)?;
        let base = path.parent().unwrap_or(Path::new("."));
        let ca = read_small(&base.join(&context.ca), "the machine CA")?;
        let cert = read_small(&base.join(&context.cert), "the client certificate")?;
        let key = read_small(&base.join(&context.key), "the client key")?;
        Ok(Resolved {
            context: context.name.clone(),
            endpoints,
            tls: ClientTls::from_pem(ca, cert, key, context.server_name.clone()),
        })
    }

    /// Resolves and connects, trying each endpoint in order.
    pub async fn connect(&self) -> anyhow::Result<MachineServiceClient<Channel>> {
        let resolved = self.resolve()?;
        let mut attempts = Vec::new();
        for endpoint in &resolved.endpoints {
            match tokio::time::timeout(
                CONNECT_TIMEOUT,
                skerry_api::connect(endpoint, &resolved.tls),
            )
            .await
            {
                Ok(Ok(client)) => {
                    return Ok(client.max_decoding_message_size(MAX_ANSWER_BYTES));
                }
                Ok(Err(skerry_api::ServeError::BadEndpoint { endpoint, .. })) => {
                    return Err(usage(format!(
                        "endpoint {endpoint:?} is not a valid https://HOST:PORT address"
                    )));
                }
                Ok(Err(err)) => attempts.push((endpoint.clone(), chain(&err))),
                Err(_) => attempts.push((
                    endpoint.clone(),
                    format!("no connection within {}s", CONNECT_TIMEOUT.as_secs()),
                )),
            }
        }
        Err(Unreachable {
            context: resolved.context,
            attempts,
        }
        .into())
    }
}

/// The largest answer message the client decodes (a resource list or a diff).
pub const MAX_ANSWER_BYTES: usize = 16 * 1024 * 1024;

/// An error's causes on one line, without repeats (the error itself names the endpoint,
/// which the caller already shows).
fn chain(err: &dyn std::error::Error) -> String {
    let Some(first) = err.source() else {
        return err.to_string();
    };
    let mut parts: Vec<String> = vec![first.to_string()];
    let mut source = first.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = cause.source();
    }
    parts.join(": ")
}

fn read_small(path: &Path, what: &str) -> anyhow::Result<Vec<u8>> {
    let meta = std::fs::metadata(path).map_err(|e| {
        usage(format!(
            "cannot read {what} {}: {e} (paths in the client config are relative to it)",
            path.display()
        ))
    })?;
    if meta.len() > MAX_CLIENT_FILE {
        return Err(usage(format!(
            "{what} {} is {} bytes, more than the limit of {MAX_CLIENT_FILE}",
            path.display(),
            meta.len()
        )));
    }
    std::fs::read(path).map_err(|e| usage(format!("cannot read {what} {}: {e}", path.display())))
}

/// Reads and checks a client config file.
pub fn read_config(path: &Path) -> anyhow::Result<ClientConfig> {
    if let Err(e) = std::fs::metadata(path) {
        return Err(usage(format!(
            "cannot read the client config {}: {e}; give --config FILE or set {CONFIG_ENV} \
             (`skerryctl gen secrets --out DIR` writes DIR/{CLIENT_CONFIG})",
            path.display()
        )));
    }
    let bytes = read_small(path, "the client config")?;
    let config: ClientConfig = serde_json::from_slice(&bytes).map_err(|e| {
        usage(format!(
            "the client config {} is not valid: {e}",
            path.display()
        ))
    })?;
    if config.version != CLIENT_CONFIG_VERSION {
        return Err(usage(format!(
            "the client config {} has version {}; this skerryctl reads version {CLIENT_CONFIG_VERSION}",
            path.display(),
            config.version
        )));
    }
    Ok(config)
}

fn pick<'a>(
    config: &'a ClientConfig,
    name: Option<&str>,
    path: &Path,
) -> anyhow::Result<&'a ClientContext> {
    let wanted = name.unwrap_or(&config.current_context);
    config
        .contexts
        .iter()
        .find(|c| c.name == wanted)
        .ok_or_else(|| {
            let names: Vec<&str> = config.contexts.iter().map(|c| c.name.as_str()).collect();
            usage(format!(
                "the client config {} has no context {wanted:?} (it has: {})",
                path.display(),
                names.join(", ")
            ))
        })
}

fn check_endpoints(endpoints: &[String], context: &str) -> anyhow::Result<()> {
    if endpoints.is_empty() {
        return Err(usage(format!(
            "context {context:?} lists no endpoints; give --endpoint https://HOST:PORT"
        )));
    }
    if endpoints.len() > MAX_ENDPOINTS {
        return Err(usage(format!(
            "context {context:?} lists {} endpoints, more than the limit of {MAX_ENDPOINTS}",
            endpoints.len()
        )));
    }
    for e in endpoints {
        if !e.starts_with("https://") || e.len() <= "https://".len() {
            return Err(usage(format!(
                "endpoint {e:?} must be an https:// address, e.g. https://10.0.0.5:{}",
                skerry_api::DEFAULT_PORT
            )));
        }
    }
    Ok(())
}

/// Reads a file a command sends or patches, bounded by `limit`.
pub fn read_input(path: &Path, what: &str, limit: usize) -> anyhow::Result<Vec<u8>> {
    let meta = std::fs::metadata(path)
        .map_err(|e| usage(format!("cannot read {what} {}: {e}", path.display())))?;
    if meta.len() > limit as u64 {
        return Err(usage(format!(
            "{what} {} is {} bytes, more than the limit of {limit}",
            path.display(),
            meta.len()
        )));
    }
    std::fs::read(path)
        .with_context(|| format!("reading {what} {}", path.display()))
        .map_err(|e| usage(format!("{e:#}")))
}
