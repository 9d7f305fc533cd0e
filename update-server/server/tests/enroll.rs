//! The enrollment service over gRPC on 127.0.0.1 (plaintext here only because this test
//! drives the service on its own; the listener's TLS is the transport's concern): a token
//! and a CSR give a certificate naming the device; expired, used-up, revoked, unknown and
//! malformed tokens are UNAUTHENTICATED; a revoked device is PERMISSION_DENIED; a CSR
//! for another id and hostile requests are INVALID_ARGUMENT / OUT_OF_RANGE.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair};
use skerry_fleet_store::{EnrollmentStore, NewJoinToken, SqliteStore};
use skerry_proto::fleet::v1::enrollment_service_client::EnrollmentServiceClient;
use skerry_proto::fleet::v1::enrollment_service_server::EnrollmentServiceServer;
use skerry_proto::fleet::v1::EnrollRequest;
use skerry_rollout::UnixTime;
use skerry_server::enroll::{EnrollApi, MAX_ENROLL_BYTES};
use skerry_server::join_token::JoinToken;
use skerry_server::pki::{device_of, Pki};
use tonic::Code;

fn now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

struct Rig {
    _dir: tempfile::TempDir,
    store: Arc<SqliteStore>,
    clock: Arc<AtomicU64>,
    client: EnrollmentServiceClient<tonic::transport::Channel>,
}

async fn rig() -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("fleet.db")).unwrap());
    let pki = Arc::new(
        Pki::load_or_create(
            &dir.path().join("pki"),
            &["localhost".into()],
            SystemTime::now(),
        )
        .unwrap(),
    );
    let clock = Arc::new(AtomicU64::new(now()));
    let c = Arc::clone(&clock);
    let api = EnrollApi::new(
        Arc::clone(&store),
        pki,
        Arc::new(move || UnixTime(c.load(Ordering::SeqCst))),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(tonic::transport::Server::builder().serve_with_incoming(
        EnrollmentServiceServer::new(api).max_decoding_message_size(MAX_ENROLL_BYTES),
        tokio_stream::wrappers::TcpListenerStream::new(listener),
    ));
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let client = EnrollmentServiceClient::new(channel);
    Rig {
        _dir: dir,
        store,
        clock,
        client,
    }
}

fn make_token(store: &SqliteStore, uses: u32, ttl: u64) -> JoinToken {
    let t = JoinToken::generate().unwrap();
    store
        .create_token(&NewJoinToken {
            id: t.id.clone(),
            secret_sha256: t.secret_sha256(),
            uses,
            created_at: UnixTime(now()),
            expires_at: UnixTime(now() + ttl),
            labels: BTreeMap::new(),
        })
        .unwrap();
    t
}

fn csr(cn: &str) -> Vec<u8> {
    let key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    p.distinguished_name = dn;
    p.serialize_request(&key).unwrap().der().to_vec()
}

fn request(token: &str, device: &str, csr_der: Vec<u8>) -> EnrollRequest {
    EnrollRequest {
        token: token.to_string(),
        device_id: device.to_string(),
        board: "pi".to_string(),
        csr_der,
    }
}

#[tokio::test]
async fn a_token_enrolls_as_many_devices_as_it_has_uses() {
    let mut r = rig().await;
    let token = make_token(&r.store, 2, 3600);
    let answer = r
        .client
        .enroll(request(&token.reveal(), "dev-1", csr("dev-1")))
        .await
        .unwrap()
        .into_inner();
    let (id, serial) = device_of(&answer.certificate_der).unwrap();
    assert_eq!(id, "dev-1");
    assert!(!answer.server_ca_der.is_empty() && !answer.device_ca_der.is_empty());
    let stored = r.store.identity("dev-1").unwrap().unwrap();
    assert_eq!(stored.identity.serial, serial);
    r.client
        .enroll(request(&token.reveal(), "dev-2", csr("dev-2")))
        .await
        .unwrap();
    let used_up = r
        .client
        .enroll(request(&token.reveal(), "dev-3", csr("dev-3")))
        .await
        .unwrap_err();
    assert_eq!(used_up.code(), Code::Unauthenticated);
    assert!(
        used_up.message().contains("used up"),
        "{}",
        used_up.message()
    );
}

#[tokio::test]
async fn expired_revoked_and_wrong_tokens_are_refused() {
    let mut r = rig().await;
    let token = make_token(&r.store, 5, 60);
    r.clock.store(now() + 61, Ordering::SeqCst);
    let e = r
        .client
        .enroll(request(&token.reveal(), "d", csr("d")))
        .await
        .unwrap_err();
    assert_eq!(
        (e.code(), e.message()),
        (Code::Unauthenticated, "join token expired")
    );
    r.clock.store(now(), Ordering::SeqCst);
    let revoked = make_token(&r.store, 5, 3600);
    r.store.revoke_token(&revoked.id, UnixTime(now())).unwrap();
    let e = r
        .client
        .enroll(request(&revoked.reveal(), "d", csr("d")))
        .await
        .unwrap_err();
    assert_eq!(
        (e.code(), e.message()),
        (Code::Unauthenticated, "join token revoked")
    );
    let wrong = format!("{}.{}", revoked.id, "0".repeat(64));
    let e = r
        .client
        .enroll(request(&wrong, "d", csr("d")))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
    let e = r
        .client
        .enroll(request("nonsense", "d", csr("d")))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
    assert!(e.message().starts_with("token:"), "{}", e.message());
}

#[tokio::test]
async fn a_revoked_device_cannot_enroll_again() {
    let mut r = rig().await;
    let token = make_token(&r.store, 5, 3600);
    r.client
        .enroll(request(&token.reveal(), "dev-r", csr("dev-r")))
        .await
        .unwrap();
    r.store.revoke_device("dev-r", UnixTime(now())).unwrap();
    let e = r
        .client
        .enroll(request(&token.reveal(), "dev-r", csr("dev-r")))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
}

#[tokio::test]
async fn csrs_for_another_id_and_hostile_requests_are_refused() {
    let mut r = rig().await;
    let token = make_token(&r.store, 5, 3600);
    let e = r
        .client
        .enroll(request(&token.reveal(), "dev-x", csr("dev-y")))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("CN=dev-x"), "{}", e.message());
    for (device, why) in [
        ("", "device_id"),
        ("a/b", "device_id"),
        (&"x".repeat(129)[..], "device_id"),
    ] {
        let e = r
            .client
            .enroll(request(&token.reveal(), device, csr("d")))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument);
        assert!(e.message().starts_with(why), "{}", e.message());
    }
    let e = r
        .client
        .enroll(request(&token.reveal(), "d", b"garbage".to_vec()))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    let e = r
        .client
        .enroll(request(
            &token.reveal(),
            "d",
            vec![0u8; MAX_ENROLL_BYTES + 1],
        ))
        .await
        .unwrap_err();
    assert_eq!(
        e.code(),
        Code::OutOfRange,
        "tonic refuses an oversized message so"
    );
    // Nothing of the refused requests was counted against the token.
    let listed = r.store.tokens().unwrap();
    assert_eq!(listed[0].used, 0);
}
