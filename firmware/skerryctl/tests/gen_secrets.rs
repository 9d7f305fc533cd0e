//! `skerryctl gen secrets`: the files it writes serve the machine API as they are. The
//! node certificate answers for the names it was given, each role's client
//! certificate from the client config gets that role, nothing is ever overwritten,
//! and keys are private.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::Command;

use skerry_api::testing::FixedMachine;
use skerry_api::{pb, ClientTls, ServerTls, VersionInfo};
use tonic::Code;

fn skerryctl(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_skerryctl"))
        .args(args)
        .output()
        .unwrap()
}

fn gen(out: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["gen", "secrets", "--out", out.to_str().unwrap()];
    args.extend_from_slice(extra);
    skerryctl(&args)
}

fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_secrets_serve_the_api_and_each_context_gets_its_role() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("secrets");
    let done = gen(
        &dir,
        &[
            "--name",
            "edge-1.local",
            "--ip",
            "127.0.0.1",
            "--output",
            "json",
        ],
    );
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&done.stdout).unwrap();
    assert_eq!(report["files"].as_array().unwrap().len(), 11);

    for key in [
        "ca.key",
        "node.key",
        "admin.key",
        "operator.key",
        "reader.key",
        "skerryconfig.json",
    ] {
        let mode = std::fs::metadata(dir.join(key))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "{key} is readable by others: {mode:o}");
    }

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let tls = ServerTls::from_pem(
        read(&dir, "node.crt"),
        read(&dir, "node.key"),
        read(&dir, "ca.crt"),
    );
    let services = FixedMachine::new(VersionInfo {
        daemon_version: "0.1.0".into(),
        ..VersionInfo::default()
    });
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        skerry_api::serve(listener, &tls, services, async {
            let _ = stopped.await;
        })
        .await
    });

    let config: serde_json::Value = serde_json::from_str(&read(&dir, "skerryconfig.json")).unwrap();
    assert_eq!(config["version"], 1);
    assert_eq!(config["current_context"], "skerry-admin");
    let contexts = config["contexts"].as_array().unwrap();
    assert_eq!(contexts.len(), 3);
    for context in contexts {
        let file = |field: &str| read(&dir, context[field].as_str().unwrap());
        let server_name = context["server_name"].as_str().unwrap();
        assert_eq!(server_name, "edge-1.local");
        assert_eq!(context["endpoints"][0], "https://127.0.0.1:50000");
        let client_tls = ClientTls::from_pem(file("ca"), file("cert"), file("key"), server_name);
        let endpoint = format!("https://127.0.0.1:{port}");
        let mut client = skerry_api::connect(&endpoint, &client_tls).await.unwrap();
        let version = client
            .version(pb::VersionRequest {})
            .await
            .unwrap()
            .into_inner();
        assert_eq!(version.daemon_version, "0.1.0");
        // Reboot needs os:operator: the reader is refused by the gate, the others reach
        // the method (which the test machine does not have).
        let reboot = client
            .reboot(pb::RebootRequest {})
            .await
            .unwrap_err()
            .code();
        let expected = match context["role"].as_str().unwrap() {
            "os:reader" => Code::PermissionDenied,
            "os:operator" | "os:admin" => Code::Unimplemented,
            other => panic!("unexpected role {other}"),
        };
        assert_eq!(reboot, expected, "{}", context["name"]);
    }

    // The node certificate is also good for its IP address.
    let admin = ClientTls::from_pem(
        read(&dir, "ca.crt"),
        read(&dir, "admin.crt"),
        read(&dir, "admin.key"),
        "127.0.0.1",
    );
    let mut client = skerry_api::connect(&format!("https://127.0.0.1:{port}"), &admin)
        .await
        .unwrap();
    client.version(pb::VersionRequest {}).await.unwrap();
    // ...and not for a name it was not given.
    let wrong = ClientTls::from_pem(
        read(&dir, "ca.crt"),
        read(&dir, "admin.crt"),
        read(&dir, "admin.key"),
        "other.local",
    );
    assert!(
        skerry_api::connect(&format!("https://127.0.0.1:{port}"), &wrong)
            .await
            .is_err()
    );

    let _ = stop.send(());
    server.await.unwrap().unwrap();
}

#[test]
fn existing_secrets_are_never_replaced() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("secrets");
    assert!(gen(&dir, &[]).status.success());
    let ca = read(&dir, "ca.crt");
    let again = gen(&dir, &[]);
    assert!(!again.status.success());
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(stderr.contains("never replaces secrets"), "{stderr}");
    assert_eq!(read(&dir, "ca.crt"), ca);
}

#[test]
fn a_bad_name_or_endpoint_is_refused_before_anything_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("secrets");
    let bad = gen(&dir, &["--name", "not a name"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--name \"not a name\""));
    let bad = gen(&dir, &["--endpoint", "http://10.0.0.5:50000"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("https://"));
    assert!(!dir.exists());
}

#[test]
fn defaults_cover_localhost_and_the_loopback_address() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("secrets");
    assert!(gen(&dir, &[]).status.success());
    let config: serde_json::Value = serde_json::from_str(&read(&dir, "skerryconfig.json")).unwrap();
    assert_eq!(config["contexts"][0]["server_name"], "localhost");
    assert_eq!(
        config["contexts"][0]["endpoints"][0],
        "https://127.0.0.1:50000"
    );
}
