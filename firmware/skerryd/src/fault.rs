//! Test-only fault hooks (cargo feature `fault-hooks`; without it this module has no
//! code that reads anything, and [`configured`] is always `None`). The slot's
//! `/etc/skerry/fault` (or `skerry.fault=` on the kernel command line) holds one word:
//!
//! - `panic-initramfs`: after the watchdog is armed, a real kernel panic (sysrq `c`);
//!   `panic=10` reboots into the bootloader, which counts the attempt;
//! - `hang-initramfs`: after the watchdog is armed, PID 1 stops doing anything, so only
//!   the watchdog brings the machine back;
//! - `hang-daemon`: [`HANG_AFTER`] after the daemon is ready its async runtime is
//!   blocked: controllers (the watchdog heartbeat among them) and the API stop, the
//!   health gate withholds the feeds and the watchdog resets the machine.
//!
//! On demand, while the system runs: a fault-hooks build on a device also listens on
//! [`TRIGGER_PORT`] (no TLS, no authentication: such a build is never in a production
//! image). A connection that sends one word (`hang-daemon`) and a newline is answered
//! `ok hang-daemon` and the daemon's runtime is blocked at once, as above; any other
//! word is answered with an error naming it. The harness's QEMU board forwards a host
//! port to it, so a scenario hangs the daemon when it chooses, not only at boot.

use std::path::Path;
use std::time::Duration;

/// The fault file, relative to the slot's root.
pub const FAULT_FILE: &str = "etc/skerry/fault";
/// How long after ready `hang-daemon` hangs.
pub const HANG_AFTER: Duration = Duration::from_secs(5);
/// The guest port of the on-demand trigger (fault-hooks builds on a device only).
pub const TRIGGER_PORT: u16 = 50099;
/// The longest trigger request read (one word and its newline).
pub const MAX_TRIGGER_REQUEST: usize = 64;

/// A fault to inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// A kernel panic in the initramfs, after arming the watchdog.
    PanicInitramfs,
    /// PID 1 hangs in the initramfs, after arming the watchdog.
    HangInitramfs,
    /// The daemon's runtime hangs a while after ready.
    HangDaemon,
}

impl Fault {
    /// Parses the one word.
    pub fn parse(word: &str) -> Option<Fault> {
        match word.trim() {
            "panic-initramfs" => Some(Fault::PanicInitramfs),
            "hang-initramfs" => Some(Fault::HangInitramfs),
            "hang-daemon" => Some(Fault::HangDaemon),
            _ => None,
        }
    }
}

/// Whether this build has the hooks.
pub const ENABLED: bool = cfg!(feature = "fault-hooks");

/// The fault configured under `root` (or by `cmdline_value`), in a build with the
/// hooks; always `None` without them.
#[cfg(feature = "fault-hooks")]
pub fn configured(root: &Path, cmdline_value: Option<&str>) -> Option<Fault> {
    if let Some(fault) = cmdline_value.and_then(Fault::parse) {
        return Some(fault);
    }
    let bytes = skerryd_core::layout::read_bounded(&root.join(FAULT_FILE), 64).ok()?;
    Fault::parse(&String::from_utf8_lossy(&bytes))
}

/// Without the `fault-hooks` feature nothing is read and no fault is injected.
#[cfg(not(feature = "fault-hooks"))]
pub fn configured(_root: &Path, _cmdline_value: Option<&str>) -> Option<Fault> {
    None
}

/// `hang-daemon`: after [`HANG_AFTER`], occupies every worker of the daemon's runtime
/// for good (the threads sleep inside tasks), as a deadlock would.
#[cfg(feature = "fault-hooks")]
pub fn hang_daemon_later(workers: usize) {
    tokio::spawn(async move {
        tokio::time::sleep(HANG_AFTER).await;
        hang_now(workers);
    });
}

/// Without the feature, nothing.
#[cfg(not(feature = "fault-hooks"))]
pub fn hang_daemon_later(_workers: usize) {}

/// Blocks `workers` threads of the runtime for good, from now.
#[cfg(feature = "fault-hooks")]
fn hang_now(workers: usize) {
    tracing::warn!("fault hook hang-daemon: blocking the runtime now");
    for _ in 0..workers {
        tokio::spawn(async {
            loop {
                std::thread::sleep(Duration::from_secs(3600));
            }
        });
    }
}

/// What a trigger request asks for: the fault to inject now, or why it is refused.
pub fn trigger_request(request: &[u8]) -> Result<Fault, String> {
    let text =
        std::str::from_utf8(request).map_err(|_| "the trigger request is not UTF-8".to_owned())?;
    let Some(line) = text.strip_suffix('\n') else {
        return Err(format!(
            "the trigger request has no newline within {MAX_TRIGGER_REQUEST} bytes"
        ));
    };
    match Fault::parse(line) {
        Some(Fault::HangDaemon) => Ok(Fault::HangDaemon),
        Some(_) => Err(format!(
            "{:?} acts only at boot; the trigger knows hang-daemon",
            line.trim()
        )),
        None => Err(format!("unknown fault word {:?}", line.trim())),
    }
}

/// The on-demand trigger: listens on `0.0.0.0:`[`TRIGGER_PORT`] and, on a
/// `hang-daemon` request, answers and blocks `workers` threads of the runtime.
#[cfg(feature = "fault-hooks")]
pub async fn listen_for_trigger(workers: usize) -> std::io::Result<std::net::SocketAddr> {
    listen_for_trigger_on(
        std::net::SocketAddr::from(([0, 0, 0, 0], TRIGGER_PORT)),
        workers,
    )
    .await
}

/// [`listen_for_trigger`] on `address` (tests bind 127.0.0.1:0).
#[cfg(feature = "fault-hooks")]
pub async fn listen_for_trigger_on(
    address: std::net::SocketAddr,
    workers: usize,
) -> std::io::Result<std::net::SocketAddr> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind(address).await?;
    let bound = listener.local_addr()?;
    tracing::warn!(%bound, "fault hooks: the on-demand trigger listens");
    tokio::spawn(async move {
        loop {
            let Ok((mut conn, peer)) = listener.accept().await else {
                continue;
            };
            let mut request = Vec::new();
            let mut buf = [0u8; MAX_TRIGGER_REQUEST];
            let read = tokio::time::timeout(Duration::from_secs(5), async {
                while request.len() < MAX_TRIGGER_REQUEST && !request.ends_with(b"\n") {
                    let want = MAX_TRIGGER_REQUEST - request.len();
                    match conn.read(&mut buf[..want]).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
            })
            .await;
            let answer = match (read, trigger_request(&request)) {
                (Err(_), _) => Err("no whole trigger request within 5s".to_owned()),
                (Ok(()), parsed) => parsed,
            };
            match answer {
                Ok(Fault::HangDaemon) => {
                    tracing::warn!(%peer, "fault hook hang-daemon triggered");
                    let _ = conn.write_all(b"ok hang-daemon\n").await;
                    let _ = conn.shutdown().await;
                    drop(conn);
                    hang_now(workers);
                    return;
                }
                Ok(_) => {}
                Err(why) => {
                    let _ = conn.write_all(format!("error: {why}\n").as_bytes()).await;
                }
            }
        }
    });
    Ok(bound)
}

/// Without the feature there is no trigger: nothing listens.
#[cfg(not(feature = "fault-hooks"))]
pub async fn listen_for_trigger(_workers: usize) -> std::io::Result<std::net::SocketAddr> {
    Err(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "this skerryd has no fault hooks",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words() {
        assert_eq!(Fault::parse("hang-daemon\n"), Some(Fault::HangDaemon));
        assert_eq!(Fault::parse("panic-initramfs"), Some(Fault::PanicInitramfs));
        assert_eq!(Fault::parse("hang-initramfs"), Some(Fault::HangInitramfs));
        assert_eq!(Fault::parse("reboot"), None);
    }

    #[test]
    fn trigger_requests_name_what_is_wrong() {
        assert_eq!(trigger_request(b"hang-daemon\n"), Ok(Fault::HangDaemon));
        let unknown = trigger_request(b"reboot\n").unwrap_err();
        assert!(
            unknown.contains("unknown fault word \"reboot\""),
            "{unknown}"
        );
        let boot_only = trigger_request(b"panic-initramfs\n").unwrap_err();
        assert!(boot_only.contains("acts only at boot"), "{boot_only}");
        let cut = trigger_request(b"hang-daemon").unwrap_err();
        assert!(cut.contains("no newline"), "{cut}");
        assert!(trigger_request(&[0xff, b'\n'])
            .unwrap_err()
            .contains("UTF-8"));
    }

    /// The trigger answers, then the runtime's workers are taken: a task spawned
    /// afterwards never runs.
    #[cfg(feature = "fault-hooks")]
    #[test]
    fn the_trigger_hangs_the_runtime_on_demand() {
        use std::io::{Read as _, Write as _};
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let address = runtime
            .block_on(listen_for_trigger_on(
                std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
                2,
            ))
            .unwrap();
        let ask = |word: &str| {
            let mut conn = std::net::TcpStream::connect(address).unwrap();
            conn.write_all(word.as_bytes()).unwrap();
            let mut answer = String::new();
            conn.read_to_string(&mut answer).unwrap();
            answer
        };
        assert!(ask("reboot\n").starts_with("error: unknown fault word"));
        let (tx, rx) = std::sync::mpsc::channel();
        let before = tx.clone();
        runtime.spawn(async move { before.send(()).unwrap() });
        rx.recv_timeout(Duration::from_secs(5))
            .expect("the runtime runs before the trigger");
        assert_eq!(ask("hang-daemon\n"), "ok hang-daemon\n");
        std::thread::sleep(Duration::from_millis(300));
        runtime.spawn(async move { tx.send(()).unwrap() });
        assert!(
            rx.recv_timeout(Duration::from_secs(2)).is_err(),
            "a task ran after the hang"
        );
        // The hung workers never return; leak the runtime rather than wait on them.
        std::mem::forget(runtime);
    }

    #[test]
    fn read_only_with_the_feature() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("etc/skerry")).unwrap();
        std::fs::write(dir.path().join(FAULT_FILE), "hang-daemon\n").unwrap();
        let expected = if ENABLED {
            Some(Fault::HangDaemon)
        } else {
            None
        };
        assert_eq!(configured(dir.path(), None), expected);
        let expected = if ENABLED {
            Some(Fault::PanicInitramfs)
        } else {
            None
        };
        assert_eq!(configured(dir.path(), Some("panic-initramfs")), expected);
    }
}
