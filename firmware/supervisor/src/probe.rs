//! The probes behind health checks: run a command, connect over TCP, or GET a path on
//! 127.0.0.1. Each is one attempt; the caller bounds it with the check's timeout, and
//! dropping the future cancels it (an exec probe's process group is killed then).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::process::{kill_group, reap_group, spawn_in_group, GroupGuard};
use crate::spec::{HealthCheckKind, StatusRange};

/// Most bytes of an HTTP answer read to find its status line.
const MAX_STATUS_LINE: usize = 1024;

/// One probe's result, with what went wrong when it failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeOutcome {
    Pass,
    Fail(String),
}

impl ProbeOutcome {
    pub fn passed(&self) -> bool {
        *self == ProbeOutcome::Pass
    }
}

/// Runs one probe of `kind`. An exec probe runs like its service: with the
/// service's environment (and nothing else) in its working directory.
pub async fn probe(
    kind: &HealthCheckKind,
    env: &BTreeMap<String, String>,
    working_dir: Option<&Path>,
) -> ProbeOutcome {
    match kind {
        HealthCheckKind::Exec { argv } => exec(argv, env, working_dir).await,
        HealthCheckKind::Tcp { host, port } => {
            match TcpStream::connect((host.as_str(), *port)).await {
                Ok(_) => ProbeOutcome::Pass,
                Err(e) => ProbeOutcome::Fail(format!("connect to {host}:{port}: {e}")),
            }
        }
        HealthCheckKind::Http { port, path, expect } => {
            probe_http("127.0.0.1", *port, path, *expect).await
        }
    }
}

async fn exec(
    argv: &[String],
    env: &BTreeMap<String, String>,
    working_dir: Option<&Path>,
) -> ProbeOutcome {
    let mut command = tokio::process::Command::new(&argv[0]);
    if let Some(dir) = working_dir {
        command.current_dir(dir);
    }
    command
        .args(&argv[1..])
        .env_clear()
        .envs(env)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    let mut child = match spawn_in_group(&mut command, &argv[0]) {
        Ok(child) => child,
        Err(e) => return ProbeOutcome::Fail(e.to_string()),
    };
    // If the timeout drops us mid-wait, the guard kills the probe's whole group;
    // kill_on_drop then has tokio reap the leader.
    let pgid = child.id();
    let _group = GroupGuard(pgid);
    let waited = child.wait().await;
    if let Some(pgid) = pgid {
        kill_group(pgid, rustix::process::Signal::KILL);
        reap_group(pgid).await;
    }
    match waited {
        Ok(status) if status.success() => ProbeOutcome::Pass,
        Ok(status) => ProbeOutcome::Fail(format!("{} exited with {status}", argv[0])),
        Err(e) => ProbeOutcome::Fail(format!("waiting for {}: {e}", argv[0])),
    }
}

/// One HTTP probe: `GET http://host:port/path`; a status in `expect` passes. `path`
/// must start with `/` and hold no space or control byte (a spec's `validate` checks).
pub async fn probe_http(host: &str, port: u16, path: &str, expect: StatusRange) -> ProbeOutcome {
    match http_status(host, port, path).await {
        Ok(status) if expect.contains(status) => ProbeOutcome::Pass,
        Ok(status) => ProbeOutcome::Fail(format!(
            "GET http://{host}:{port}{path} answered {status}, expected {}-{}",
            expect.min, expect.max
        )),
        Err(e) => ProbeOutcome::Fail(format!("GET http://{host}:{port}{path}: {e}")),
    }
}

/// A minimal HTTP/1.0 GET: enough to read the status code of an endpoint without an
/// HTTP client dependency.
async fn http_status(host: &str, port: u16, path: &str) -> Result<u16, String> {
    let mut stream = TcpStream::connect((host, port))
        .await
        .map_err(|e| e.to_string())?;
    let request =
        format!("GET {path} HTTP/1.0\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut head = Vec::with_capacity(MAX_STATUS_LINE);
    let mut buf = [0u8; 256];
    while !head.contains(&b'\n') && head.len() < MAX_STATUS_LINE {
        let n = stream.read(&mut buf).await.map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n.min(MAX_STATUS_LINE - head.len())]);
    }
    parse_status_line(&head)
}

/// The status code of `HTTP/1.x NNN ...`.
fn parse_status_line(head: &[u8]) -> Result<u16, String> {
    let line_end = head
        .iter()
        .position(|&b| b == b'\n')
        .ok_or("no status line in the answer")?;
    let line = std::str::from_utf8(&head[..line_end]).map_err(|_| "status line is not text")?;
    let mut parts = line.trim_end_matches('\r').splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/") {
        return Err(format!("not an HTTP answer: {line:?}"));
    }
    let code = parts.next().unwrap_or_default();
    match code.parse::<u16>() {
        Ok(status) if code.len() == 3 && (100..=599).contains(&status) => Ok(status),
        _ => Err(format!("bad status code in {line:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines() {
        assert_eq!(parse_status_line(b"HTTP/1.0 200 OK\r\n"), Ok(200));
        assert_eq!(parse_status_line(b"HTTP/1.1 503\r\nx"), Ok(503));
        assert!(parse_status_line(b"HTTP/1.1 200 OK").is_err());
        assert!(parse_status_line(b"SSH-2.0-x\r\n").is_err());
        assert!(parse_status_line(b"HTTP/1.1 2000 OK\r\n").is_err());
        assert!(parse_status_line(b"HTTP/1.1 099 OK\r\n").is_err());
    }
}
