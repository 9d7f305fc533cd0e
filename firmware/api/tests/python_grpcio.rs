//! A client that is not ours: Python `grpcio` with stubs generated from the `.proto`
//! files by `grpcio-tools` calls Version over mutual TLS, and a reader's Upgrade is
//! refused with PERMISSION_DENIED. Install them with `scripts/deps/grpc.sh`.

mod common;

use std::path::Path;

use common::Served;
use skerry_api::Role;

const VENV_PYTHON: &str = "/opt/skerry/grpc-venv/bin/python3";

fn python() -> &'static str {
    let ok = std::process::Command::new(VENV_PYTHON)
        .args(["-c", "import grpc, grpc_tools.protoc"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "grpcio and grpcio-tools are not installed in {VENV_PYTHON}: run scripts/deps/grpc.sh"
    );
    VENV_PYTHON
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_grpcio_client_gets_the_version_over_mutual_tls() {
    let python = python();
    let served = Served::start().await;
    let dir = tempfile::tempdir().unwrap();
    let reader = served.ca.client_for(Role::Reader);
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let ca = write("ca.crt", &served.ca.cert_pem);
    let cert = write("reader.crt", &reader.cert);
    let key = write("reader.key", &reader.key);
    let stubs = dir.path().join("stubs");
    std::fs::create_dir(&stubs).unwrap();
    let target = served.endpoint.trim_start_matches("https://").to_owned();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/grpcio_version.py");

    let output = tokio::process::Command::new(python)
        .arg(&script)
        .arg(skerry_proto::PROTO_DIR)
        .arg(&stubs)
        .arg(&target)
        .args([&ca, &cert, &key])
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "python client failed: {}\n{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    let answer: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(answer["daemon_version"], "0.1.0");
    assert_eq!(answer["api_version"], "skerry.machine.v1");
    assert_eq!(answer["board"], "rpi4");
    assert_eq!(answer["booted_slot"], "A");
    assert_eq!(answer["upgrade"], "PERMISSION_DENIED");
    served.stop().await;
}
