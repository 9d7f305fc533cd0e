//! A client that is not ours: Python `grpcio` with stubs generated from the `.proto`
//! files by `grpcio-tools` calls Version over mutual TLS, and a reader's Upgrade is
//! refused with PERMISSION_DENIED (the driver is `skerry_api::testing::grpcio`).
//! Install them with `scripts/deps/grpc.sh`.

mod common;

use std::path::Path;

use common::Served;
use skerry_api::testing::grpcio;
use skerry_api::Role;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_grpcio_client_gets_the_version_over_mutual_tls() {
    let served = Served::start().await;
    let dir = tempfile::tempdir().unwrap();
    let reader = served.ca.client_for(Role::Reader).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/grpcio_version.py");
    let stdout = grpcio::run_script(
        &script,
        dir.path(),
        &served.endpoint,
        &served.ca.cert_pem,
        &[("reader", &reader)],
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let answer: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(answer["daemon_version"], "0.1.0");
    assert_eq!(answer["api_version"], "skerry.machine.v1");
    assert_eq!(answer["board"], "rpi4");
    assert_eq!(answer["booted_slot"], "A");
    assert_eq!(answer["upgrade"], "PERMISSION_DENIED");
    served.stop().await;
}
