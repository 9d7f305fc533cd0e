//! The server's log on stderr: with `--log-format json` every line is one JSON object
//! with a level and the event's facts as fields; the default is text lines; `SKERRY_LOG`
//! filters; a failure to start is logged as an error and exits non-zero.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

/// A running server and the lines of its stderr, read on a thread of their own.
struct Server {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Server {
    fn start(data: &std::path::Path, extra: &[&str], log: Option<&str>) -> Self {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_skerry-server"));
        cmd.args(["--data", data.to_str().unwrap(), "--listen", "127.0.0.1:0"])
            .args(extra)
            .env_remove("SKERRY_LOG")
            .stderr(Stdio::piped());
        if let Some(filter) = log {
            cmd.env("SKERRY_LOG", filter);
        }
        let mut child = cmd.spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self { child, lines }
    }

    /// Lines until one contains `needle` (inclusive); panics after 30 s or at EOF.
    fn until(&self, needle: &str) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let done = line.contains(needle);
                    seen.push(line);
                    if done {
                        return seen;
                    }
                }
                Err(e) => panic!("no line with {needle:?} ({e:?}); saw {seen:#?}"),
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn json(line: &str) -> Value {
    serde_json::from_str(line).unwrap_or_else(|e| panic!("not one JSON object ({e}): {line}"))
}

#[test]
fn json_lines_carry_the_level_and_the_facts_as_fields() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--log-format", "json"], None);
    let lines = server.until("\"serving");
    let events: Vec<Value> = lines.iter().map(|l| json(l)).collect();
    let serving = events.last().unwrap();
    assert_eq!(serving["level"], "INFO", "{serving}");
    let fields = &serving["fields"];
    assert!(
        fields["message"].as_str().unwrap().starts_with("serving"),
        "{serving}"
    );
    assert!(
        fields["url"]
            .as_str()
            .unwrap()
            .starts_with("http://127.0.0.1:"),
        "{serving}"
    );
    assert_eq!(fields["database"], "embedded", "{serving}");
    assert_eq!(fields["data"].as_str(), dir.path().to_str(), "{serving}");
    // An empty data directory has no online timestamp key: a warning naming the file.
    let later = server.until("timestamp");
    let warning = json(later.last().unwrap());
    assert_eq!(warning["level"], "WARN", "{warning}");
    assert!(
        warning["fields"]["key"]
            .as_str()
            .unwrap()
            .starts_with(dir.path().to_str().unwrap()),
        "{warning}"
    );
}

#[test]
fn text_is_the_default_and_skerry_log_filters() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[], None);
    let lines = server.until("serving");
    let serving = lines.last().unwrap();
    assert!(serving.contains(" INFO "), "{serving}");
    assert!(serving.contains("url=http://127.0.0.1:"), "{serving}");
    assert!(!serving.starts_with('{'), "{serving}");
    drop(server);

    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--log-format", "json"], Some("warn"));
    let lines = server.until("timestamp");
    for line in &lines {
        assert_ne!(json(line)["level"], "INFO", "{line}");
    }
}

#[test]
fn a_port_in_use_is_logged_as_an_error_and_exits_non_zero() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let at = taken.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_skerry-server"))
        .args(["--data", dir.path().to_str().unwrap(), "--listen", &at])
        .args(["--log-format", "json"])
        .env_remove("SKERRY_LOG")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let error = json(stderr.lines().last().expect("a log line"));
    assert_eq!(error["level"], "ERROR", "{error}");
    assert_eq!(error["fields"]["listen"], at.as_str(), "{error}");
    assert!(
        error["fields"]["error"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("in use"),
        "{error}"
    );
}
