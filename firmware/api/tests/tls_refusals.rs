//! What a client sees when its certificate is missing, from another CA, or expired:
//! mutual TLS is required, so the handshake itself fails and no method runs. Under TLS
//! 1.3 the client learns it from the server's alert on its first call (gRPC code
//! UNKNOWN, "transport error", with the alert in the error's source chain).

mod common;

use common::{Served, TestCa};
use skerry_api::testing::error_chain;
use skerry_api::{pb, ClientTls, Role, ServerTls};

/// Connects and calls Version; returns the error text the client sees, or `None` if
/// the call succeeded.
async fn version_error(served: &Served, tls: &ClientTls) -> Option<String> {
    let mut client = match skerry_api::connect(&served.endpoint, tls).await {
        Ok(client) => client,
        Err(e) => return Some(error_chain(&e)),
    };
    match client.version(pb::VersionRequest {}).await {
        Ok(_) => None,
        Err(status) => Some(format!("{:?}: {}", status.code(), error_chain(&status))),
    }
}

#[tokio::test]
async fn a_client_with_a_role_certificate_gets_the_version() {
    let served = Served::start().await;
    let reader = served.ca.client_for(Role::Reader).unwrap();
    assert_eq!(
        version_error(&served, &served.client_tls(&reader)).await,
        None
    );
    served.stop().await;
}

#[tokio::test]
async fn no_client_certificate_fails_the_handshake() {
    let served = Served::start().await;
    let tls = ClientTls::anonymous(&served.ca.cert_pem, "localhost");
    let error = version_error(&served, &tls).await;
    let error = error.expect("a client without a certificate must be refused");
    eprintln!("client without a certificate sees: {error}");
    assert!(error.contains("CertificateRequired"), "{error}");
    served.stop().await;
}

#[tokio::test]
async fn a_certificate_from_another_ca_fails_the_handshake() {
    let served = Served::start().await;
    let other = TestCa::new("someone else's CA").unwrap();
    let admin = other.client_for(Role::Admin).unwrap();
    let tls = ClientTls::from_pem(&served.ca.cert_pem, &admin.cert, &admin.key, "localhost");
    let error = version_error(&served, &tls).await;
    let error = error.expect("a certificate from another CA must be refused");
    eprintln!("client with a foreign certificate sees: {error}");
    assert!(error.contains("UnknownCA"), "{error}");
    served.stop().await;
}

#[tokio::test]
async fn an_expired_certificate_fails_the_handshake() {
    let served = Served::start().await;
    let admin = served.ca.expired_client(Role::Admin).unwrap();
    let error = version_error(&served, &served.client_tls(&admin)).await;
    let error = error.expect("an expired certificate must be refused");
    eprintln!("client with an expired certificate sees: {error}");
    assert!(error.contains("CertificateExpired"), "{error}");
    served.stop().await;
}

#[tokio::test]
async fn a_client_refuses_a_server_whose_ca_it_does_not_trust() {
    let served = Served::start().await;
    let other = TestCa::new("someone else's CA").unwrap();
    let reader = served.ca.client_for(Role::Reader).unwrap();
    let tls = ClientTls::from_pem(&other.cert_pem, &reader.cert, &reader.key, "localhost");
    let error = version_error(&served, &tls).await;
    let error = error.expect("a server from another CA must be refused");
    eprintln!("client distrusting the server sees: {error}");
    assert!(error.contains("UnknownIssuer"), "{error}");
    served.stop().await;
}

#[test]
fn server_material_is_checked_before_serving() {
    let ca = TestCa::new("machine CA").unwrap();
    let node = ca.node().unwrap();
    let other = ca.node().unwrap();
    assert!(ServerTls::from_pem(&node.cert, &node.key, &ca.cert_pem)
        .check()
        .is_ok());
    let mismatched = ServerTls::from_pem(&node.cert, &other.key, &ca.cert_pem).check();
    let error = error_chain(&mismatched.unwrap_err());
    assert!(error.contains("key"), "{error}");
    assert!(ServerTls::from_pem("not pem", &node.key, &ca.cert_pem)
        .check()
        .is_err());
}
