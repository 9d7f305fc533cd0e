//! The real `skerry-server` process (built with `cargo build -p skerry-server`, as the
//! skerryd fleet tests do) on 127.0.0.1 over a data directory, stopped by its PID.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn server_binary() -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "-q", "-p", "skerry-server"])
        .status()
        .expect("running cargo build -p skerry-server");
    assert!(status.success(), "cargo build -p skerry-server failed");
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let bin = target.join("debug/skerry-server");
    assert!(bin.exists(), "{} missing after the build", bin.display());
    bin
}

pub struct UpdateServer {
    child: Child,
    pub addr: SocketAddr,
}

impl UpdateServer {
    /// Starts the server on `data`; ready once it listens and its operator token exists.
    pub fn start(data: &Path) -> Self {
        let addr = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let child = Command::new(server_binary())
            .arg("--data")
            .arg(data)
            .args(["--listen", &addr.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting skerry-server");
        let server = Self { child, addr };
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(addr).is_err() || !data.join("keys/operator.token").exists() {
            assert!(
                Instant::now() < deadline,
                "skerry-server did not listen on {addr}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for UpdateServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
