//! The operator API client: one server URL and bearer token, JSON in and out, and files
//! streamed up. A refusal carries the server's own message and its HTTP status.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use serde_json::Value;

use crate::client::exit::usage;

/// The most bytes of one JSON answer read.
pub const MAX_ANSWER: u64 = 16 * 1024 * 1024;

/// The server answered with an error status.
#[derive(Debug)]
pub struct ServerRefused {
    pub method: String,
    pub url: String,
    pub status: u16,
    pub message: String,
}

impl std::fmt::Display for ServerRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the server refused {} {} with HTTP {}: {}",
            self.method, self.url, self.status, self.message
        )
    }
}

impl std::error::Error for ServerRefused {}

/// The server was not reached.
#[derive(Debug)]
pub struct ServerUnreachable {
    pub url: String,
    pub why: String,
}

impl std::fmt::Display for ServerUnreachable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "could not reach the server at {}: {}",
            self.url, self.why
        )
    }
}

impl std::error::Error for ServerUnreachable {}

/// Where the server is and how to find its token (flags, else the environment).
#[derive(Debug, Clone, clap::Args)]
pub struct ServerArgs {
    /// The server's base URL, like http://updates.example.com:8470 (else $SKERRY_SERVER).
    #[arg(long)]
    pub server: Option<String>,
    /// The file holding the operator token, the server's DIR/keys/operator.token (else
    /// $SKERRY_OPERATOR_TOKEN_FILE).
    #[arg(long)]
    pub token_file: Option<PathBuf>,
}

/// A connection to one server's operator API.
pub struct Server {
    base: String,
    token: String,
    agent: ureq::Agent,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl Server {
    pub fn connect(args: &ServerArgs) -> anyhow::Result<Self> {
        let base = match args
            .server
            .clone()
            .or_else(|| std::env::var("SKERRY_SERVER").ok())
        {
            Some(b) => b.trim_end_matches('/').to_string(),
            None => return Err(usage("give the server: --server URL or SKERRY_SERVER=URL")),
        };
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(usage(format!(
                "--server {base:?}: give an http:// or https:// URL"
            )));
        }
        let token_file = match args
            .token_file
            .clone()
            .or_else(|| std::env::var_os("SKERRY_OPERATOR_TOKEN_FILE").map(PathBuf::from))
        {
            Some(p) => p,
            None => {
                return Err(usage(
                    "give the operator token: --token-file FILE or SKERRY_OPERATOR_TOKEN_FILE=FILE (the server's DIR/keys/operator.token)",
                ))
            }
        };
        let token = read_token(&token_file)?;
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(10))
            .timeout_read(Duration::from_secs(300))
            .build();
        Ok(Self { base, token, agent })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// Sends a JSON request to `/api/v1/<path>` and returns the JSON answer.
    pub fn call(&self, method: &str, path: &str, body: Option<&Value>) -> anyhow::Result<Value> {
        let url = format!("{}/api/v1/{path}", self.base);
        let req = self
            .request(method, &url)
            .set("Content-Type", "application/json");
        let answer = match body {
            Some(b) => req.send_string(&b.to_string()),
            None => req.call(),
        };
        self.finish(method, &url, answer)
    }

    /// Streams the file at `local` to `/api/v1/<path>` with PUT.
    pub fn put_file(&self, path: &str, local: &Path) -> anyhow::Result<Value> {
        let url = format!("{}/api/v1/{path}", self.base);
        let file =
            std::fs::File::open(local).with_context(|| format!("opening {}", local.display()))?;
        let len = file
            .metadata()
            .with_context(|| format!("reading {}", local.display()))?
            .len();
        let answer = self
            .request("PUT", &url)
            .set("Content-Type", "application/octet-stream")
            .set("Content-Length", &len.to_string())
            .send(file);
        self.finish("PUT", &url, answer)
    }

    /// A plain GET outside the API (the public repository), as `(status, length)`.
    pub fn head_public(&self, path: &str) -> anyhow::Result<Option<u64>> {
        let url = format!("{}/{path}", self.base);
        match self.agent.request("HEAD", &url).call() {
            Ok(r) => Ok(r.header("Content-Length").and_then(|v| v.parse().ok())),
            Err(ureq::Error::Status(404, _)) => Ok(None),
            Err(ureq::Error::Status(code, _)) => Err(ServerRefused {
                method: "HEAD".into(),
                url,
                status: code,
                message: "unexpected answer".into(),
            }
            .into()),
            Err(ureq::Error::Transport(t)) => Err(ServerUnreachable {
                url,
                why: t.to_string(),
            }
            .into()),
        }
    }

    fn request(&self, method: &str, url: &str) -> ureq::Request {
        self.agent
            .request(method, url)
            .set("Authorization", &format!("Bearer {}", self.token))
    }

    fn finish(
        &self,
        method: &str,
        url: &str,
        answer: Result<ureq::Response, ureq::Error>,
    ) -> anyhow::Result<Value> {
        match answer {
            Ok(r) => read_json(r).with_context(|| format!("the answer to {method} {url}")),
            Err(ureq::Error::Status(status, r)) => {
                let message = read_json(r)
                    .ok()
                    .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_owned))
                    .unwrap_or_else(|| "(no message)".into());
                Err(ServerRefused {
                    method: method.into(),
                    url: url.into(),
                    status,
                    message,
                }
                .into())
            }
            Err(ureq::Error::Transport(t)) => Err(ServerUnreachable {
                url: url.into(),
                why: t.to_string(),
            }
            .into()),
        }
    }
}

fn read_json(r: ureq::Response) -> anyhow::Result<Value> {
    let mut bytes = Vec::new();
    r.into_reader()
        .take(MAX_ANSWER + 1)
        .read_to_end(&mut bytes)
        .context("reading the answer")?;
    anyhow::ensure!(
        bytes.len() as u64 <= MAX_ANSWER,
        "the answer is over {MAX_ANSWER} bytes"
    );
    serde_json::from_slice(&bytes).context("the answer is not JSON")
}

fn read_token(path: &Path) -> anyhow::Result<String> {
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(4096).read_to_string(&mut text))
        .map_err(|e| usage(format!("the operator token file {}: {e}", path.display())))?;
    let token = text.trim().to_string();
    if token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(usage(format!(
            "the operator token file {} holds no token (copy the server's DIR/keys/operator.token)",
            path.display()
        )));
    }
    Ok(token)
}
