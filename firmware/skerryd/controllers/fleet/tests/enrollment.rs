//! skerryd's enrollment against the real skerry-server process (`--tls-listen` on
//! 127.0.0.1): the join URL `token create --url` prints enrolls the device (key 0600 in
//! its state directory, never sent), which then checks in over mutual TLS; a join URL
//! pinning another CA sends nothing (the token stays unused).

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use skerry_proto::fleet::v1::{CheckInRequest, Health, HealthState, SlotState, SlotStatus};
use skerryd_fleet::client::check_in_with;
use skerryd_fleet::enrollment::{enroll, DeviceIdentity, EnrollError, JoinUrl};

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
    target.join("debug/skerry-server")
}

fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// The server process, stopped by its PID when dropped.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(bin: &Path, data: &Path, plain: SocketAddr, tls: SocketAddr) -> Server {
    let child = Command::new(bin)
        .arg("--data")
        .arg(data)
        .args([
            "--listen",
            &plain.to_string(),
            "--tls-listen",
            &tls.to_string(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting skerry-server");
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(tls).is_err() {
        assert!(
            Instant::now() < deadline,
            "skerry-server did not listen on {tls}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Server(child)
}

fn token_create(bin: &Path, data: &Path, tls: SocketAddr) -> String {
    let out = Command::new(bin)
        .args(["token", "create", "--uses", "1", "--data"])
        .arg(data)
        .args(["--url", &format!("https://localhost:{}", tls.port())])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    // As the kernel command line would carry it.
    let cmdline = text.lines().collect::<Vec<_>>().join(" ");
    JoinUrl::from_cmdline(&cmdline).unwrap().to_string()
}

fn token_list(bin: &Path, data: &Path) -> String {
    let out = Command::new(bin)
        .args(["token", "list", "--data"])
        .arg(data)
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap()
}

fn check_in_request(device: &str) -> CheckInRequest {
    CheckInRequest {
        device_id: device.into(),
        board: "pi".into(),
        version: "1.0.0".into(),
        channel: "stable".into(),
        slots: vec![SlotState {
            name: "a".into(),
            version: "1.0.0".into(),
            status: SlotStatus::Good as i32,
            booted: true,
        }],
        health: Some(Health {
            state: HealthState::Healthy as i32,
            failing_checks: vec![],
        }),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_enrolls_by_its_join_url_then_checks_in_over_mutual_tls() {
    let bin = server_binary();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("server");
    let (plain, tls) = (free_addr(), free_addr());
    let _server = start(&bin, &data, plain, tls);

    // A join URL pinning another CA: refused before the token is sent.
    let url = token_create(&bin, &data, tls);
    let wrong_pin = {
        let (head, _) = url.split_once("&ca=sha256:").unwrap();
        format!("{head}&ca=sha256:{}", "0".repeat(64))
    };
    let state = tmp.path().join("var-fleet");
    let identity = DeviceIdentity::new(&state.join("identity"));
    let refused = enroll(
        &JoinUrl::parse(&wrong_pin).unwrap(),
        "sim-01",
        "pi",
        &identity,
    )
    .await
    .unwrap_err();
    assert!(matches!(refused, EnrollError::Pin { .. }), "{refused}");
    assert!(
        token_list(&bin, &data).contains("used 0/1"),
        "{}",
        token_list(&bin, &data)
    );
    assert!(!identity.enrolled());

    enroll(&JoinUrl::parse(&url).unwrap(), "sim-01", "pi", &identity)
        .await
        .unwrap();
    assert!(identity.enrolled());
    let mode = std::fs::metadata(identity.key())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    assert!(token_list(&bin, &data).contains("used 1/1"));

    let server = format!("https://localhost:{}", tls.port());
    let answer = check_in_with(
        &server,
        Some(identity.client_tls("localhost").unwrap()),
        check_in_request("sim-01"),
    )
    .await
    .unwrap();
    assert!(answer.hold.is_some(), "{answer:?}");
    // The certificate is sim-01's; checking in as another device is refused.
    let other = check_in_with(
        &server,
        Some(identity.client_tls("localhost").unwrap()),
        check_in_request("sim-02"),
    )
    .await
    .unwrap_err();
    assert!(other.to_string().contains("sim-01"), "{other}");
    // And the enrolled device is refused on the plaintext port.
    let plain_refused =
        skerryd_fleet::client::check_in(&format!("http://{plain}"), check_in_request("sim-01"))
            .await
            .unwrap_err();
    assert!(
        plain_refused.to_string().contains("mutual TLS"),
        "{plain_refused}"
    );
}
