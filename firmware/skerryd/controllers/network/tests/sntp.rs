//! The SNTP client against a real NTP server: chronyd, started by the test on 127.0.0.1
//! and a free port with clock control off (`-x`), so the host's clock is never touched.
//! chronyd comes from `scripts/install-deps` (scripts/deps/network.sh unpacks Debian's
//! chrony into /opt/skerry/chrony).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use common::{context, from_json, put, start, stop, wait_for};
use skerryd_core::resources::{ActiveTime, SINGLETON};
use skerryd_network::clock::{RecordingClock, SystemClock as _};
use skerryd_network::resources::{TimeStatus, TIME_STATUS_ID};
use skerryd_network::sntp;
use skerryd_network::timekeeper::SntpTuning;
use skerryd_network::Backends;

fn chronyd() -> PathBuf {
    let candidates = [
        PathBuf::from("/opt/skerry/chrony/usr/sbin/chronyd"),
        PathBuf::from("/usr/sbin/chronyd"),
    ];
    candidates
        .into_iter()
        .find(|p| p.exists())
        .expect("chronyd is not installed: run scripts/install-deps (scripts/deps/network.sh unpacks it into /opt/skerry/chrony)")
}

/// A chronyd serving on 127.0.0.1; stopped by its PID when dropped.
struct Chrony {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Chrony {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn config(dir: &Path, port: u16) -> String {
    format!(
        "port {port}\nbindaddress 127.0.0.1\nlocal stratum 8\nallow 127.0.0.1\ncmdport 0\n\
         pidfile {pid}\ndriftfile {drift}\n",
        pid = dir.join("chronyd.pid").display(),
        drift = dir.join("drift").display()
    )
}

async fn chrony() -> Chrony {
    let dir = tempfile::tempdir().unwrap();
    let port = free_udp_port();
    let conf = dir.path().join("chrony.conf");
    std::fs::write(&conf, config(dir.path(), port)).unwrap();
    let log = std::fs::File::create(dir.path().join("chronyd.log")).unwrap();
    // -x: never touch the clock; -d: stay in the foreground; -u root: the package's
    // _chrony user does not exist (it is unpacked, not installed).
    let child = Command::new(chronyd())
        .args(["-x", "-d", "-u", "root", "-f"])
        .arg(&conf)
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("starting chronyd");
    let server = Chrony {
        child,
        port,
        _dir: dir,
    };
    // Wait until it answers as a synchronized server.
    let clock = RecordingClock::host();
    let address = format!("127.0.0.1:{port}");
    let mut last = None;
    for _ in 0..50 {
        match sntp::query(&address, &clock, Duration::from_millis(200), 1).await {
            Ok(_) => return server,
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("chronyd on {address} never answered: {last:?}");
}

#[tokio::test]
async fn the_client_gets_the_time_from_chronyd() {
    let server = chrony().await;
    let address = format!("127.0.0.1:{}", server.port);
    // chronyd serves the host's clock, so our offset from it is small.
    let host = RecordingClock::host();
    let sample = sntp::query(&address, &host, Duration::from_secs(2), 2)
        .await
        .unwrap();
    assert_eq!(sample.stratum, 8, "{sample:?}");
    assert!(sample.offset_nanos.abs() < 500_000_000, "{sample:?}");
    assert!(sample.delay < Duration::from_millis(500), "{sample:?}");
    // A clock an hour behind measures an offset of an hour.
    let behind = RecordingClock::host();
    behind
        .set(SystemTime::now() - Duration::from_secs(3600))
        .unwrap();
    let sample = sntp::query(&address, &behind, Duration::from_secs(2), 2)
        .await
        .unwrap();
    let hour = 3_600_000_000_000i64;
    assert!(
        (sample.offset_nanos - hour).abs() < 500_000_000,
        "{sample:?}"
    );
}

#[tokio::test]
async fn no_answer_is_a_bounded_timeout() {
    // A port with nobody behind it (bound by us, never answered).
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let address = silent.local_addr().unwrap().to_string();
    let err = sntp::query(
        &address,
        &RecordingClock::host(),
        Duration::from_millis(200),
        2,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, sntp::SntpError::Timeout { attempts: 2, .. }),
        "{err}"
    );
}

#[tokio::test]
async fn the_time_controller_syncs_and_steps_a_recording_clock() {
    let server = chrony().await;
    let root = tempfile::tempdir().unwrap();
    let context = context(root.path());
    let address = format!("127.0.0.1:{}", server.port);
    // An unreachable server first: the controller moves on to the next.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    put(
        &context.state,
        SINGLETON,
        ActiveTime(from_json(serde_json::json!({
            "sntp": {"servers": [silent.local_addr().unwrap().to_string(), address], "pollInterval": "1s"},
            "floor": {"source": "persisted", "saveInterval": "1h"}
        }))),
    );
    // The board's clock is a day behind the host's (and ahead of the floor).
    let clock = RecordingClock::host();
    clock
        .set(SystemTime::now() - Duration::from_secs(86_400))
        .unwrap();
    let backends = Backends {
        sntp: SntpTuning {
            timeout: Duration::from_millis(300),
            attempts: 1,
        },
        ..Backends::recording(Arc::new(clock.clone()))
    };
    let handle = start(&context, backends);
    let status = wait_for("a synced status", || {
        context
            .state
            .get::<TimeStatus>(TIME_STATUS_ID)
            .ok()
            .map(|r| r.spec)
            .filter(|s| s.synced)
    })
    .await;
    assert_eq!(status.last_server.as_deref(), Some(address.as_str()));
    let day = 86_400_000_000_000i64;
    let offset = status.last_offset_nanos.unwrap();
    assert!((offset - day).abs() < 1_000_000_000, "{status:?}");
    // The step went to the recording clock, which now agrees with the host.
    assert_eq!(clock.sets().len(), 2, "{:?}", clock.sets());
    let gap = clock
        .now()
        .duration_since(SystemTime::now())
        .unwrap_or_else(|e| e.duration());
    assert!(gap < Duration::from_secs(1), "{gap:?}");
    assert!(context
        .events
        .everything()
        .0
        .iter()
        .any(|e| e.kind == "time.synced"));
    // Synchronizing saved the floor at once.
    let floor = skerryd_network::floor::FloorStore::load(&context.layout.time(), 1)
        .0
        .floor();
    assert!(
        floor + Duration::from_secs(60) > SystemTime::now(),
        "{floor:?}"
    );
    stop(&context, handle).await;
}

/// A server that answers every request with a kiss-o'-death `code`, counting requests.
async fn kissing_server(code: [u8; 4]) -> (String, Arc<std::sync::atomic::AtomicUsize>) {
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let address = socket.local_addr().unwrap().to_string();
    let count = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = count.clone();
    tokio::spawn(async move {
        let mut buffer = [0u8; 512];
        while let Ok((n, from)) = socket.recv_from(&mut buffer).await {
            seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let Ok(request) = sntp::Packet::parse(&buffer[..n]) else {
                continue;
            };
            let reply = sntp::Packet {
                leap: 3,
                version: 4,
                mode: 4,
                stratum: 0,
                reference_id: code,
                originate: request.transmit,
                receive: sntp::NtpTimestamp(0),
                transmit: sntp::NtpTimestamp(0),
            };
            let _ = socket.send_to(&reply.encode(), from).await;
        }
    });
    (address, count)
}

#[tokio::test]
async fn a_server_that_says_deny_is_not_asked_again() {
    let (address, requests) = kissing_server(*b"DENY").await;
    let root = tempfile::tempdir().unwrap();
    let context = context(root.path());
    put(
        &context.state,
        SINGLETON,
        ActiveTime(from_json(serde_json::json!({
            "sntp": {"servers": [address], "pollInterval": "1s"}
        }))),
    );
    let backends = Backends {
        sntp: SntpTuning {
            timeout: Duration::from_millis(300),
            attempts: 2,
        },
        ..Backends::recording(Arc::new(RecordingClock::host()))
    };
    let handle = start(&context, backends);
    let status = wait_for("the kiss-o'-death in the status", || {
        context
            .state
            .get::<TimeStatus>(TIME_STATUS_ID)
            .ok()
            .map(|r| r.spec)
            .filter(|s| s.last_error.contains("DENY"))
    })
    .await;
    assert!(!status.synced);
    // Three poll intervals later it was still asked only once (one request: a
    // kiss-o'-death is not retried).
    tokio::time::sleep(Duration::from_millis(3200)).await;
    assert_eq!(requests.load(std::sync::atomic::Ordering::SeqCst), 1);
    let status = context
        .state
        .get::<TimeStatus>(TIME_STATUS_ID)
        .unwrap()
        .spec;
    assert!(status.last_error.contains("not asked again"), "{status:?}");
    stop(&context, handle).await;
}
