//! A client that is not ours: Python `grpcio`, with stubs generated from the `.proto`
//! files by `grpcio-tools`, calls skerryd's Machine over mutual TLS as a reader and as
//! an admin (see tests/data/grpcio_machine.py; the driver is `skerry_api::testing::grpcio`).
//! Install them with `scripts/deps/grpc.sh`.

mod common;

use std::path::Path;

use common::Served;
use skerry_api::testing::grpcio;
use skerry_api::Role;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_grpcio_client_uses_skerryds_api_over_mutual_tls() {
    let served = Served::start().await;
    let dir = tempfile::tempdir().unwrap();
    let reader = served.ca.client_for(Role::Reader).unwrap();
    let admin = served.ca.client_for(Role::Admin).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/grpcio_machine.py");
    let stdout = grpcio::run_script(
        &script,
        dir.path(),
        &served.endpoint,
        &served.ca.cert_pem,
        &[("reader", &reader), ("admin", &admin)],
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let answer: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(answer["board"], "rpi4");
    assert_eq!(answer["api_version"], "skerry.machine.v1");
    assert_eq!(answer["health"], "HEALTH_STATUS_UNHEALTHY");
    assert_eq!(answer["checks"], serde_json::json!(["web/http"]));
    assert!(
        answer["check_yaml"]
            .as_str()
            .unwrap()
            .contains("critical: true"),
        "{answer}"
    );
    assert_eq!(
        answer["events"],
        serde_json::json!(["daemon.started", "service.state"])
    );
    assert_eq!(answer["services"], serde_json::json!(["web"]));
    assert_eq!(answer["reader_upgrade"], "PERMISSION_DENIED");
    assert_eq!(answer["reader_sensitive"], "PERMISSION_DENIED");
    assert_eq!(answer["bad_after_id"], "INVALID_ARGUMENT");
    assert!(
        answer["admin_sensitive_yaml"]
            .as_str()
            .unwrap()
            .contains("API_TOKEN: s3cret-t0ken"),
        "{answer}"
    );
    assert_eq!(
        answer["admin_upgrade"],
        serde_json::json!(["UPGRADE_PHASE_DOWNLOADING", "UPGRADE_PHASE_TRIAL_READY"])
    );
    // What reached the subsystems: the reader's calls that passed the gate, the admin's
    // upgrade; never the reader's upgrade.
    assert_eq!(
        served.calls.all(),
        ["health", "service-list", "upgrade 2026.12.2 force=false"]
    );
    served.stop().await;
}
