//! The server under load: the real `skerry-server` binary on a data directory, killed
//! with SIGKILL (not asked) and started again on the same data and port.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use skerry_fleet_store::{FleetStore, SqliteStore};

pub struct Server {
    pub addr: SocketAddr,
    /// The device-facing TLS port, when started with one (plaintext check-ins are then
    /// refused: devices check in by certificate).
    pub tls: Option<SocketAddr>,
    data: PathBuf,
    database: Option<String>,
    /// The instance's stderr (its log), beside the data directory: two instances may
    /// share one data directory, so each log is named by its port.
    pub log: PathBuf,
    child: Option<Child>,
}

impl Server {
    pub fn start(data: &Path) -> Result<Self, String> {
        Self::start_on(data, None)
    }

    /// With `database`, the server runs on that PostgreSQL instead of `data/fleet.db`.
    pub fn start_on(data: &Path, database: Option<&str>) -> Result<Self, String> {
        Self::start_with(data, database, false)
    }

    /// Embedded, with a TLS listener beside the plaintext one.
    pub fn start_tls(data: &Path) -> Result<Self, String> {
        Self::start_with(data, None, true)
    }

    fn start_with(data: &Path, database: Option<&str>, tls: bool) -> Result<Self, String> {
        let loopback = |port: u16| -> SocketAddr {
            format!("127.0.0.1:{port}")
                .parse()
                .expect("literal address")
        };
        let addr = loopback(crate::nginx::free_port()?);
        let tls = if tls {
            Some(loopback(crate::nginx::free_port()?))
        } else {
            None
        };
        let port = addr.port();
        let mut s = Server {
            addr,
            tls,
            data: data.to_path_buf(),
            database: database.map(str::to_owned),
            log: data.with_extension(format!("{port}.log")),
            child: None,
        };
        s.spawn()?;
        Ok(s)
    }

    fn spawn(&mut self) -> Result<(), String> {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_skerry-server"));
        if let Some(url) = &self.database {
            cmd.arg("--database").arg(url);
        }
        if let Some(tls) = self.tls {
            cmd.arg("--tls-listen").arg(tls.to_string());
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(|e| format!("{}: {e}", self.log.display()))?;
        let child = cmd
            .arg("--data")
            .arg(&self.data)
            .arg("--listen")
            .arg(self.addr.to_string())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("starting skerry-server: {e}"))?;
        self.child = Some(child);
        let until = Instant::now() + Duration::from_secs(20);
        let listening =
            |a: Option<SocketAddr>| a.is_none_or(|a| std::net::TcpStream::connect(a).is_ok());
        while !(listening(Some(self.addr)) && listening(self.tls)) {
            if Instant::now() > until {
                self.stop();
                return Err(format!(
                    "skerry-server did not listen on {} within 20 s (its log: {})",
                    self.addr,
                    self.log.display()
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// Makes `count` DDI targets (`load-00000`, …) in `data` before a server starts
    /// there; their target tokens, in order.
    pub fn ddi_targets(data: &Path, count: usize) -> Result<Vec<String>, String> {
        (0..count)
            .map(|n| {
                let out = Command::new(env!("CARGO_BIN_EXE_skerry-server"))
                    .args([
                        "ddi",
                        "add",
                        &format!("load-{n:05}"),
                        "--board",
                        "pi",
                        "--data",
                    ])
                    .arg(data)
                    .output()
                    .map_err(|e| format!("running skerry-server ddi add: {e}"))?;
                let token = String::from_utf8_lossy(&out.stdout).trim().to_owned();
                if !out.status.success() || token.is_empty() {
                    return Err(format!(
                        "skerry-server ddi add: {}",
                        String::from_utf8_lossy(&out.stderr)
                    ));
                }
                Ok(token)
            })
            .collect()
    }

    pub fn kill_and_restart(&mut self) -> Result<(), String> {
        if let Some(mut c) = self.child.take() {
            c.kill()
                .map_err(|e| format!("SIGKILL skerry-server: {e}"))?;
            let _ = c.wait();
        }
        self.spawn()
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            signal(&c, rustix::process::Signal::TERM);
            let until = Instant::now() + Duration::from_secs(10);
            while Instant::now() < until {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// How many devices the server acknowledged a report to that its database does not hold
/// (read back after the server stopped): its durable sequence below the one it answered,
/// or the acknowledged report missing from the device's timeline.
pub fn lost_acknowledged(data: &Path, acknowledged: &HashMap<String, u64>) -> Result<u64, String> {
    count_lost(data, acknowledged, true)
}

/// [`lost_acknowledged`] without naming each device.
pub fn lost_acknowledged_quiet(
    data: &Path,
    acknowledged: &HashMap<String, u64>,
) -> Result<u64, String> {
    count_lost(data, acknowledged, false)
}

fn count_lost(data: &Path, acknowledged: &HashMap<String, u64>, tell: bool) -> Result<u64, String> {
    let store =
        SqliteStore::open(&data.join("fleet.db")).map_err(|e| format!("open store: {e}"))?;
    let mut lost = 0;
    for (id, &acked) in acknowledged {
        if acked == 0 {
            continue;
        }
        let device = store.device(id).map_err(|e| e.to_string())?;
        let durable = device.map(|d| d.acknowledged).unwrap_or(0);
        let timeline = store.timeline(id).map_err(|e| e.to_string())?;
        let wanted = format!("load report {acked}");
        let kept = timeline.iter().any(|t| t.detail == wanted);
        if durable < acked || !kept {
            lost += 1;
            if !tell {
                continue;
            }
            eprintln!(
                "{id}: answered acknowledged={acked}; the database holds {durable}, \
                 report {acked} {}",
                if kept {
                    "kept"
                } else {
                    "missing from the timeline"
                }
            );
        }
    }
    Ok(lost)
}

/// Prints the last lines of an instance's log, for a run that saw errors.
pub fn show_log_tail(log: &Path) {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    eprintln!("-- the last lines of {}:", log.display());
    for line in &lines[lines.len().saturating_sub(20)..] {
        eprintln!("{line}");
    }
}

/// Sends `sig` to the child we started (by its PID).
fn signal(child: &std::process::Child, sig: rustix::process::Signal) {
    if let Some(pid) = rustix::process::Pid::from_raw(child.id() as i32) {
        let _ = rustix::process::kill_process(pid, sig);
    }
}
