//! The node's TLS material from a `skerryctl gen secrets` directory: a good directory
//! serves the API, and every missing, malformed or mismatched file is an error naming
//! that file.

mod common;

use std::path::Path;

use common::{Served, TestCa};
use skerry_api::testing::error_chain;
use skerry_api::{pb, Role};
use skerryd::api::{load_server_tls, TlsLoadError, CA_CERT, MAX_PEM_BYTES, NODE_CERT, NODE_KEY};

fn secrets(dir: &Path) -> TestCa {
    let ca = TestCa::new("machine CA").unwrap();
    let node = ca.node().unwrap();
    std::fs::write(dir.join(CA_CERT), &ca.cert_pem).unwrap();
    std::fs::write(dir.join(NODE_CERT), &node.cert).unwrap();
    std::fs::write(dir.join(NODE_KEY), &node.key).unwrap();
    ca
}

#[test]
fn the_file_names_are_those_gen_secrets_writes() {
    // firmware/skerryctl/src/gen.rs writes ca.crt, node.crt and node.key.
    assert_eq!(
        (CA_CERT, NODE_CERT, NODE_KEY),
        ("ca.crt", "node.crt", "node.key")
    );
}

#[tokio::test]
async fn a_good_directory_serves_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let ca = secrets(dir.path());
    let tls = load_server_tls(dir.path()).unwrap();
    let served = Served::start_with(ca, tls).await;
    let mut client = served.client(Role::Reader).await;
    let version = client
        .version(pb::VersionRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(version.board, "rpi4");
    served.stop().await;
}

#[test]
fn each_missing_file_is_named() {
    for name in [CA_CERT, NODE_CERT, NODE_KEY] {
        let dir = tempfile::tempdir().unwrap();
        secrets(dir.path());
        std::fs::remove_file(dir.path().join(name)).unwrap();
        let error = load_server_tls(dir.path()).unwrap_err();
        assert!(matches!(error, TlsLoadError::Missing { .. }), "{error:?}");
        let text = error_chain(&error);
        assert!(
            text.starts_with(&dir.path().join(name).display().to_string()),
            "{text}"
        );
        assert!(text.contains("skerryctl gen secrets"), "{text}");
    }
}

#[test]
fn malformed_files_are_named_with_what_is_wrong() {
    let cases: [(&str, &[u8], &str); 5] = [
        (CA_CERT, b"hello", "no PEM block"),
        (
            NODE_CERT,
            b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
            "does not parse",
        ),
        (NODE_CERT, b"", "no PEM block"),
        (
            NODE_KEY,
            b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
            "CERTIFICATE",
        ),
        (NODE_KEY, b"not a key", "no PEM block"),
    ];
    for (name, content, reason) in cases {
        let dir = tempfile::tempdir().unwrap();
        secrets(dir.path());
        std::fs::write(dir.path().join(name), content).unwrap();
        let error = load_server_tls(dir.path()).unwrap_err();
        let text = error_chain(&error);
        assert!(matches!(error, TlsLoadError::Bad { .. }), "{name}: {text}");
        assert!(
            text.starts_with(&dir.path().join(name).display().to_string()),
            "{name}: {text}"
        );
        assert!(text.contains(reason), "{name}: {text}");
    }
    let dir = tempfile::tempdir().unwrap();
    secrets(dir.path());
    let huge = vec![b'A'; usize::try_from(MAX_PEM_BYTES).unwrap() + 1];
    std::fs::write(dir.path().join(NODE_KEY), huge).unwrap();
    let error = load_server_tls(dir.path()).unwrap_err();
    assert!(matches!(error, TlsLoadError::TooLarge { .. }), "{error:?}");
}

#[test]
fn a_key_from_another_run_is_refused_naming_both_files() {
    let dir = tempfile::tempdir().unwrap();
    let ca = secrets(dir.path());
    std::fs::write(dir.path().join(NODE_KEY), ca.node().unwrap().key).unwrap();
    let error = load_server_tls(dir.path()).unwrap_err();
    let text = error_chain(&error);
    assert!(matches!(error, TlsLoadError::Refused { .. }), "{text}");
    assert!(
        text.contains("node.crt") && text.contains("node.key"),
        "{text}"
    );
    eprintln!("a mismatched key reads: {text}");
}
