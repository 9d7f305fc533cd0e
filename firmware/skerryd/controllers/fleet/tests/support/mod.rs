//! The real skerry-server and skerryd for the fleet client's process tests: both built
//! by the test (`cargo build -p skerry-server -p skerryd`), the server on 127.0.0.1
//! ports of its own, stopped by its PID when dropped.

#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// `(skerry-server, skerryd)`, built.
pub fn binaries() -> (PathBuf, PathBuf) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "-q", "-p", "skerry-server", "-p", "skerryd"])
        .status()
        .expect("running cargo build -p skerry-server -p skerryd");
    assert!(
        status.success(),
        "cargo build -p skerry-server -p skerryd failed"
    );
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../../target"));
    (
        target.join("debug/skerry-server"),
        target.join("debug/skerryd"),
    )
}

pub fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// `skerry-server ARGS --data DATA` (the server need not run); its stdout.
pub fn cli(bin: &Path, data: &Path, args: &[&str]) -> String {
    let out = Command::new(bin)
        .args(args)
        .arg("--data")
        .arg(data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `token create --uses 1 --url https://localhost:PORT` for the TLS port `tls`: what it
/// prints (the token, then `skerry.join=…`, `skerry.logs=…`, `skerry.events=…`).
pub fn token_create(bin: &Path, data: &Path, tls: SocketAddr) -> String {
    let url = format!("https://localhost:{}", tls.port());
    cli(
        bin,
        data,
        &["token", "create", "--uses", "1", "--url", &url],
    )
}

/// The server process, stopped by its PID when dropped.
pub struct Server {
    child: Child,
    pub plain: SocketAddr,
    pub data: PathBuf,
    pub bin: PathBuf,
    log: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// A server with its data in `DIR/server`; returns it and its TLS address.
    pub fn start(bin: &Path, dir: &Path) -> (Server, SocketAddr) {
        let tls = free_addr();
        (Self::start_at(bin, dir, tls), tls)
    }

    /// A server with its data in `DIR/server` (kept from an earlier one) and its TLS
    /// port at `tls`.
    pub fn start_at(bin: &Path, dir: &Path, tls: SocketAddr) -> Server {
        let plain = free_addr();
        let data = dir.join("server");
        let log = dir.join("server.log");
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        let child = Command::new(bin)
            .arg("--data")
            .arg(&data)
            .args(["--listen", &plain.to_string()])
            .args(["--tls-listen", &tls.to_string()])
            .args(["--poll-interval", "5s"])
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("starting skerry-server");
        let server = Server {
            child,
            plain,
            data,
            bin: bin.into(),
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(tls).is_err()
            || !server.data.join("keys/operator.token").exists()
        {
            assert!(
                Instant::now() < deadline,
                "skerry-server did not start:\n{}",
                server.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn cli(&self, args: &[&str]) -> String {
        cli(&self.bin, &self.data, args)
    }

    /// `GET /api/v1/devices/ID`, `None` while the server knows no such device.
    pub fn device(&self, id: &str) -> Option<Value> {
        let token = std::fs::read_to_string(self.data.join("keys/operator.token")).unwrap();
        let answer = ureq::get(&format!("http://{}/api/v1/devices/{id}", self.plain))
            .set("Authorization", &format!("Bearer {}", token.trim()))
            .call();
        match answer {
            Ok(a) => Some(serde_json::from_str(&a.into_string().unwrap()).unwrap()),
            Err(ureq::Error::Status(404, _)) => None,
            Err(e) => panic!("GET devices/{id}: {e}"),
        }
    }
}
