//! The real `skerry-server` as a child process on 127.0.0.1, and its operator API
//! (`/api/v1`, bearer token from `DATA/keys/operator.token`) read as JSON.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use serde_json::Value;

/// How long the server may take to answer `/healthz` after it was started.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest operator API answer read (the API's own pages are far smaller).
const MAX_ANSWER: u64 = 4 << 20;

/// A running server; stopped (by its pid) when dropped.
#[derive(Debug)]
pub struct FleetServer {
    child: Child,
    addr: SocketAddr,
    data: PathBuf,
    log: PathBuf,
    token: String,
    agent: ureq::Agent,
}

impl FleetServer {
    /// Starts `bin --data DATA --listen 127.0.0.1:PORT --poll-interval POLL` (its log in
    /// `log`) and waits until it answers `/healthz`.
    pub fn start(bin: &Path, data: &Path, poll: Duration, log: &Path) -> anyhow::Result<Self> {
        FleetServer::start_with(bin, data, poll, log, &[])
    }

    /// As [`FleetServer::start`], with more arguments (`--tls-listen ADDR`, `--tls-name`).
    pub fn start_with(
        bin: &Path,
        data: &Path,
        poll: Duration,
        log: &Path,
        more: &[String],
    ) -> anyhow::Result<Self> {
        let addr = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .context("finding a free port on 127.0.0.1")?;
        let out =
            std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let child = Command::new(bin)
            .arg("--data")
            .arg(data)
            .args(["--listen", &addr.to_string()])
            .args(["--poll-interval", &format!("{}ms", poll.as_millis())])
            .args(more)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let agent = ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(10))
            .build();
        let mut server = FleetServer {
            child,
            addr,
            data: data.to_owned(),
            log: log.to_owned(),
            token: String::new(),
            agent,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(answer) = server
                .agent
                .get(&format!("{}/healthz", server.url()))
                .call()
            {
                if answer.status() == 200 {
                    break;
                }
            }
            if let Some(status) = server.child.try_wait()? {
                bail!(
                    "skerry-server exited with {status} before it served:\n{}",
                    server.log_text()
                );
            }
            if Instant::now() > deadline {
                bail!(
                    "skerry-server did not answer /healthz within {START_TIMEOUT:?}:\n{}",
                    server.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let token_path = data.join("keys").join("operator.token");
        server.token = std::fs::read_to_string(&token_path)
            .with_context(|| format!("reading the operator token {}", token_path.display()))?
            .trim()
            .to_owned();
        Ok(server)
    }

    /// `http://127.0.0.1:PORT`: the gRPC endpoint devices check in with.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The plaintext port's address on 127.0.0.1.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where the server hosts its signed repository.
    pub fn repository_url(&self) -> String {
        format!("{}/repository", self.url())
    }

    /// The data directory.
    pub fn data(&self) -> &Path {
        &self.data
    }

    /// The operator token (for the dashboard's address).
    pub fn token(&self) -> &str {
        &self.token
    }

    /// What the server logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `GET /api/v1/PATH` as JSON.
    pub fn get(&self, path: &str) -> anyhow::Result<Value> {
        let url = format!("{}/api/v1/{path}", self.url());
        let answer = self
            .agent
            .get(&url)
            .set("Authorization", &format!("Bearer {}", self.token))
            .call();
        read(&url, answer)
    }

    /// `POST /api/v1/PATH` with a JSON body.
    pub fn post(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        let url = format!("{}/api/v1/{path}", self.url());
        let answer = self
            .agent
            .post(&url)
            .set("Authorization", &format!("Bearer {}", self.token))
            .set("Content-Type", "application/json")
            .send_string(&body.to_string());
        read(&url, answer)
    }

    /// The rollout `id` as `GET /api/v1/rollouts` lists it.
    pub fn rollout(&self, id: &str) -> anyhow::Result<Value> {
        let all = self.get("rollouts")?;
        all["rollouts"]
            .as_array()
            .and_then(|list| list.iter().find(|r| r["id"] == id))
            .cloned()
            .with_context(|| format!("the server lists no rollout {id}: {all}"))
    }

    /// The device `id` with its timeline (`GET /api/v1/devices/ID`).
    pub fn device(&self, id: &str) -> anyhow::Result<Value> {
        self.get(&format!("devices/{id}"))
    }

    /// Stops the server by its pid and waits for it.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn read(url: &str, answer: Result<ureq::Response, ureq::Error>) -> anyhow::Result<Value> {
    let response = match answer {
        Ok(r) => r,
        Err(ureq::Error::Status(status, r)) => {
            let body = r.into_string().unwrap_or_default();
            bail!("{url} answered {status}: {body}");
        }
        Err(e) => return Err(e).with_context(|| format!("requesting {url}")),
    };
    let mut text = String::new();
    std::io::Read::read_to_string(
        &mut std::io::Read::take(response.into_reader(), MAX_ANSWER),
        &mut text,
    )
    .with_context(|| format!("reading the answer of {url}"))?;
    serde_json::from_str(&text).with_context(|| format!("{url} answered no JSON: {text}"))
}

impl Drop for FleetServer {
    fn drop(&mut self) {
        self.stop();
    }
}
