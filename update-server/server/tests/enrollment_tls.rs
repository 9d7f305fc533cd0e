//! Enrollment and check-in over the server's device-facing TLS listener with a real
//! tonic client: enroll with a join token and no client certificate, then check in with
//! the issued certificate; the certificate of another device, of another CA, an expired
//! or superseded one, a revoked device, spent tokens, and the plaintext port's rules.

mod tls_support;

use std::time::{Duration, SystemTime};

use skerry_rollout::UnixTime;
use skerry_server::pki::Pki;
use tls_support::*;
use tonic::Code;

const DAY: Duration = Duration::from_secs(86_400);

fn assert_refused(o: &Outcome, code: Code, words: &str) {
    match o {
        Outcome::Refused(c, m) if *c == code && m.contains(words) => {}
        other => panic!("expected {code:?} saying {words:?}, got {other:?}"),
    }
}

fn assert_answered(o: &Outcome) {
    assert!(
        matches!(o, Outcome::Answered(_)),
        "expected an answer, got {o:?}"
    );
}

/// A refused TLS handshake: the connection fails, the server's gate never answers.
fn assert_handshake_refused(o: &Outcome) {
    assert!(
        matches!(o, Outcome::Transport(_)),
        "expected the handshake to fail, got {o:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_enrolls_then_checks_in_only_as_itself_with_its_certificate() {
    let s = TlsServer::start(true, |_| {}).await;
    let token = s.token(2, DAY, unix_now());
    let dev1 = s.enroll(&token.reveal(), "dev-1").await.unwrap();
    assert_answered(&s.check_in_tls(Some(&dev1), "dev-1").await);
    assert_refused(
        &s.check_in_tls(Some(&dev1), "dev-2").await,
        Code::PermissionDenied,
        "device dev-1's",
    );
    assert_refused(
        &s.check_in_tls(None, "dev-1").await,
        Code::Unauthenticated,
        "no client certificate",
    );
    // The second use of the token re-enrolls dev-1: the first certificate is superseded.
    let again = s.enroll(&token.reveal(), "dev-1").await.unwrap();
    assert_refused(
        &s.check_in_tls(Some(&dev1), "dev-1").await,
        Code::Unauthenticated,
        "superseded",
    );
    assert_answered(&s.check_in_tls(Some(&again), "dev-1").await);
    // The token is used up now.
    let used_up = s.enroll(&token.reveal(), "dev-3").await.unwrap_err();
    assert_eq!(used_up.code(), Code::Unauthenticated);
    assert!(
        used_up.message().contains("used up"),
        "{}",
        used_up.message()
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_device_is_refused_at_its_next_check_in() {
    let s = TlsServer::start(true, |_| {}).await;
    let token = s.token(1, DAY, unix_now());
    let dev = s.enroll(&token.reveal(), "dev-r").await.unwrap();
    assert_answered(&s.check_in_tls(Some(&dev), "dev-r").await);
    skerry_server::enroll_admin::revoke_device(&s.db(), "dev-r", unix_now()).unwrap();
    assert_refused(
        &s.check_in_tls(Some(&dev), "dev-r").await,
        Code::PermissionDenied,
        "revoked",
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_of_another_ca_or_past_their_dates_fail_the_handshake() {
    let s = TlsServer::start(true, |_| {}).await;
    // Shaped like ours, same device name, another CA.
    let stranger = stranger_device("dev-s");
    assert_handshake_refused(&s.check_in_tls(Some(&stranger), "dev-s").await);
    // Issued by the server's own device CA 400 days ago: expired 35 days ago. Its serial
    // is made current in the store, so only the date can refuse it.
    let pki = Pki::load_or_create(&s.srv().join("pki"), &[], SystemTime::now()).unwrap();
    let (key, csr) = csr("dev-x");
    let old = pki
        .issue_device("dev-x", &csr, SystemTime::now() - 400 * DAY)
        .unwrap();
    let store = skerry_fleet_store::SqliteStore::open(&s.srv().join("fleet.db")).unwrap();
    let token = s.token(1, DAY, unix_now());
    use skerry_fleet_store::EnrollmentStore as _;
    store
        .enroll(
            &token.id,
            &token.secret_sha256(),
            &skerry_fleet_store::DeviceIdentity {
                device_id: "dev-x".into(),
                board: "pi".into(),
                serial: old.serial.clone(),
                not_after: UnixTime::from_system(old.not_after),
            },
            unix_now(),
        )
        .unwrap()
        .unwrap();
    let expired = Device {
        id: "dev-x".into(),
        cert_pem: skerry_server::device_http::certificate_pem(&old.der),
        key_pem: key.serialize_pem(),
        cert_der: old.der,
    };
    assert_handshake_refused(&s.check_in_tls(Some(&expired), "dev-x").await);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_revoked_and_unknown_tokens_enroll_nothing() {
    let s = TlsServer::start(true, |_| {}).await;
    let expired = s.token(
        5,
        Duration::from_secs(3600),
        UnixTime(unix_now().0 - 2 * 86_400),
    );
    let e = s.enroll(&expired.reveal(), "dev-e").await.unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
    assert!(e.message().contains("expired"), "{}", e.message());
    let revoked = s.token(5, DAY, unix_now());
    skerry_server::enroll_admin::revoke_token(&s.db(), &revoked.id, unix_now()).unwrap();
    let e = s.enroll(&revoked.reveal(), "dev-e").await.unwrap_err();
    assert!(e.message().contains("revoked"), "{}", e.message());
    let e = s
        .enroll(&format!("{}.{}", "0".repeat(16), "0".repeat(64)), "dev-e")
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
    assert!(e.message().contains("unknown"), "{}", e.message());
    assert!(
        skerry_server::enroll_admin::list_tokens(&s.db(), unix_now())
            .unwrap()
            .iter()
            .all(|l| l.contains("used 0/5"))
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_plaintext_port_takes_no_tokens_and_no_enrolled_devices() {
    let s = TlsServer::start(true, |_| {}).await;
    let token = s.token(1, DAY, unix_now());
    // Enroll on the plaintext port: refused before the token is looked at.
    let plain_enroll =
        skerry_proto::fleet::v1::enrollment_service_client::EnrollmentServiceClient::new(
            s.plain_channel().await,
        )
        .enroll(skerry_proto::fleet::v1::EnrollRequest {
            token: token.reveal(),
            device_id: "dev-p".into(),
            board: "pi".into(),
            csr_der: csr("dev-p").1,
        })
        .await
        .unwrap_err();
    assert_eq!(plain_enroll.code(), Code::FailedPrecondition);
    assert!(plain_enroll.message().contains("TLS only"));
    let dev = s.enroll(&token.reveal(), "dev-p").await.unwrap();
    assert_refused(
        &s.check_in_plain("dev-p").await,
        Code::Unauthenticated,
        "mutual TLS only",
    );
    // With a TLS listener, devices that never enrolled are sent there too.
    assert_refused(
        &s.check_in_plain("dev-new").await,
        Code::Unauthenticated,
        "--tls-listen",
    );
    assert_answered(&s.check_in_tls(Some(&dev), "dev-p").await);
    let data = s.stop_keeping_data().await;

    // Without a TLS listener (the existing callers), devices that never enrolled check in
    // in plaintext as before; one enrolled earlier on the same data is still refused.
    let plain_only = TlsServer::start_on(data, false, |_| {}).await;
    assert_answered(&plain_only.check_in_plain("dev-new").await);
    assert_refused(
        &plain_only.check_in_plain("dev-p").await,
        Code::Unauthenticated,
        "mutual TLS only",
    );
    let data = plain_only.stop_keeping_data().await;
    // --allow-plaintext-devices takes them all (tests and demos).
    let allowed = TlsServer::start_on(data, true, |c| c.allow_plaintext_devices = true).await;
    assert_answered(&allowed.check_in_plain("dev-p").await);
    assert_answered(&allowed.check_in_plain("dev-new").await);
    allowed.stop().await;
}
