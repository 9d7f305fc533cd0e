//! The fleet client against the real skerry-server process (built by this test with
//! `cargo build -p skerry-server`) on 127.0.0.1 over a temporary data directory: the
//! device checks in, its reports are acknowledged and counted once, a stopped server
//! leaves them queued on disk until it is back, and hostile answers are refused.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use skerry_proto::fleet::v1::{Health, HealthState, UpgradeStep};
use skerryd_fleet::client::{check_in, CheckInError};
use skerryd_fleet::queue::ReportQueue;
use skerryd_fleet::request::{self, Identity};

fn server_binary() -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "-q", "-p", "skerry-server"])
        .status()
        .expect("running cargo build -p skerry-server");
    assert!(status.success(), "cargo build -p skerry-server failed");
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../../target"));
    let bin = target.join("debug/skerry-server");
    assert!(bin.exists(), "{} missing after the build", bin.display());
    bin
}

struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Server {
    fn start(bin: &Path, data: &Path, addr: SocketAddr) -> Server {
        let child = Command::new(bin)
            .arg("--data")
            .arg(data)
            .args(["--listen", &addr.to_string(), "--poll-interval", "30s"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting skerry-server");
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(addr).is_err() {
            assert!(
                Instant::now() < deadline,
                "skerry-server did not listen on {addr}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Server { child, addr }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops it by its PID.
    fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

fn who() -> Identity {
    Identity {
        device_id: "sim-01".into(),
        board: "pi".into(),
        version: "1.0.0".into(),
        channel: "stable".into(),
        labels: [("site".to_owned(), "mine-7".to_owned())].into(),
    }
}

fn healthy() -> Health {
    Health {
        state: HealthState::Healthy as i32,
        failing_checks: vec![],
    }
}

fn request(queue: &ReportQueue) -> skerry_proto::fleet::v1::CheckInRequest {
    request::build(
        &who(),
        vec![request::booted_slot("a", "1.0.0", false)],
        healthy(),
        queue.state(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_reach_the_server_once_and_survive_an_outage() {
    let bin = server_binary();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("server");
    let state = tmp.path().join("device-var-fleet");
    let addr = free_addr();
    let server = Server::start(&bin, &data, addr);

    let mut queue = ReportQueue::open(&state).unwrap();
    queue.push(1, UpgradeStep::Downloading, "2.0.0", "", 1_800_000_000);
    queue.push(2, UpgradeStep::Rebooting, "2.0.0", "", 1_800_000_010);
    queue.save().unwrap();

    let answer = check_in(&server.url(), request(&queue)).await.unwrap();
    assert_eq!(answer.acknowledged_sequence, 2, "{answer:?}");
    assert_eq!(answer.poll_interval.unwrap().seconds, 30);
    assert!(
        answer.hold.is_some(),
        "no rollout: the server holds ({answer:?})"
    );
    // An answer lost on the way: the same reports are sent again and stored once.
    let again = check_in(&server.url(), request(&queue)).await.unwrap();
    assert_eq!(again.acknowledged_sequence, 2);
    queue.acknowledge(again.acknowledged_sequence);
    queue.save().unwrap();
    assert!(queue.state().reports.is_empty());

    // The server goes away: the step waits on disk, across a "restart" of the device.
    server.stop();
    queue.push(3, UpgradeStep::Committed, "2.0.0", "", 1_800_000_100);
    queue.save().unwrap();
    let err = check_in(&format!("http://{addr}"), request(&queue))
        .await
        .unwrap_err();
    assert!(matches!(err, CheckInError::Connect { .. }), "{err}");
    drop(queue);
    let queue = ReportQueue::open(&state).unwrap();
    assert_eq!(queue.state().reports.len(), 1);
    assert_eq!(queue.state().reports[0].sequence, 3);

    let server = Server::start(&bin, &data, addr);
    let answer = check_in(&server.url(), request(&queue)).await.unwrap();
    assert_eq!(answer.acknowledged_sequence, 3, "{answer:?}");
    server.stop();

    // What the server recorded: the device, and each step on its timeline once.
    use skerry_fleet_store::FleetStore as _;
    let store = skerry_fleet_store::SqliteStore::open(&data.join("fleet.db")).unwrap();
    let device = store.device("sim-01").unwrap().expect("the device appears");
    assert_eq!(device.board, "pi");
    assert_eq!(device.labels["site"], "mine-7");
    assert_eq!(device.acknowledged, 3);
    let steps: Vec<String> = store
        .timeline("sim-01")
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .filter(|k| !["checked-in", "offered", "enrolled"].contains(&k.as_str()))
        .collect();
    assert_eq!(
        steps,
        ["downloading", "rebooting", "committed"],
        "each step exactly once, in order"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_refuses_or_talks_nonsense_is_an_error_not_a_panic() {
    let bin = server_binary();
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&bin, &tmp.path().join("server"), free_addr());
    let queue = ReportQueue::open(&tmp.path().join("q")).unwrap();
    let mut bad = request(&queue);
    bad.device_id = "no spaces allowed".into();
    let err = check_in(&server.url(), bad).await.unwrap_err();
    assert!(matches!(err, CheckInError::Refused { .. }), "{err}");
    assert!(err.to_string().contains("device_id"), "{err}");
    server.stop();

    // Not HTTP/2 at all: a peer that writes garbage and hangs up.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let junk = std::thread::spawn(move || {
        for _ in 0..2 {
            if let Ok((mut s, _)) = listener.accept() {
                let mut buf = [0u8; 64];
                let _ = s.read(&mut buf);
                let _ = s.write_all(&[0xff; 4096]);
            }
        }
    });
    let err = check_in(&format!("http://{addr}"), request(&queue))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            CheckInError::Connect { .. } | CheckInError::Refused { .. }
        ),
        "{err}"
    );
    drop(junk);
}
