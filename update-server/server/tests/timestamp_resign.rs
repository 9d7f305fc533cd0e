//! The server re-signs `timestamp.json` with the online key before it expires, and a
//! device's real TUF client (the installer's refresh over HTTP) accepts the result.

mod support;

use std::time::{Duration, SystemTime};

use skerry_installer::{Fetcher, RetryPolicy};
use skerry_release::{Expiries, Repository};
use skerry_server::timestamp::{is_due, ResignError, ResignPolicy, TimestampSigner};
use skerry_tuf::{RememberedVersions, TrustedRoot};
use support::*;

fn short_lived() -> Expiries {
    Expiries {
        timestamp: Duration::from_secs(3600),
        ..Expiries::default()
    }
}

fn timestamp_version(srv: &std::path::Path) -> u64 {
    Repository::new(&srv.join("repository"))
        .current()
        .unwrap()
        .timestamp
        .signed
        .version
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expiring_timestamp_is_re_signed_and_verifies_on_a_device() {
    let mut published = 0;
    let s = TestServer::start(
        |srv, keys| {
            publish(srv, keys, &[("1.0.0", "stable")], &short_lived());
            published = timestamp_version(srv);
            std::fs::create_dir_all(srv.join("keys")).unwrap();
            std::fs::copy(keys.join("timestamp.key"), srv.join("keys/timestamp.key")).unwrap();
        },
        |c| {
            c.resign_every = Duration::from_millis(50);
            c.resign = ResignPolicy {
                renew_before: Duration::from_secs(2 * 3600),
                validity: Duration::from_secs(7 * 86_400),
            };
        },
    )
    .await;
    let srv = s.srv();
    let mut version = timestamp_version(&srv);
    for _ in 0..200 {
        if version > published {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
        version = timestamp_version(&srv);
    }
    assert_eq!(version, published + 1, "re-signed once");
    let expires = Repository::new(&srv.join("repository"))
        .current()
        .unwrap()
        .timestamp
        .signed
        .expires
        .0;
    assert!(expires > SystemTime::now() + Duration::from_secs(6 * 86_400));
    // Not due any more: the version stays.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(timestamp_version(&srv), version);

    // A device trusting root 1 refreshes over HTTP from the server and accepts it.
    let base = format!("http://{}/repository", s.addr);
    let root = std::fs::read(srv.join("repository/metadata/1.root.json")).unwrap();
    let verified = tokio::task::spawn_blocking(move || {
        let fetcher = Fetcher::new(
            skerry_installer::open_url(&base, Duration::from_secs(10)).unwrap(),
            RetryPolicy::default(),
        );
        let mut trusted = TrustedRoot::from_bytes(&root).unwrap();
        let mut remembered = RememberedVersions::default();
        let release = skerry_installer::refresh::refresh(
            &fetcher,
            &mut trusted,
            &mut remembered,
            SystemTime::now(),
        )
        .unwrap();
        remembered.record(&release);
        remembered.timestamp()
    })
    .await
    .unwrap();
    assert_eq!(verified, version);
    s.stop().await;
}

#[test]
fn a_key_the_root_does_not_name_is_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let srv = dir.path().join("srv");
    publish(
        &srv,
        &dir.path().join("keys"),
        &[("1.0.0", "stable")],
        &short_lived(),
    );
    let stranger = skerry_release::KeySet::generate(&dir.path().join("other"), 1).unwrap();
    let before = std::fs::read(srv.join("repository/metadata/timestamp.json")).unwrap();
    let signer = TimestampSigner::load(
        &srv.join("repository"),
        &stranger.dir.join("timestamp.key"),
        ResignPolicy::default(),
    )
    .unwrap();
    let err = signer.resign_if_due(SystemTime::now()).unwrap_err();
    assert!(matches!(err, ResignError::Untrusted { .. }), "{err}");
    assert_eq!(
        std::fs::read(srv.join("repository/metadata/timestamp.json")).unwrap(),
        before
    );
}

#[test]
fn due_means_within_the_renewal_margin_or_already_expired() {
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
    let margin = Duration::from_secs(100);
    assert!(!is_due(now + Duration::from_secs(101), now, margin));
    assert!(is_due(now + Duration::from_secs(100), now, margin));
    assert!(is_due(now - Duration::from_secs(5), now, margin));
}

#[tokio::test]
async fn offline_keys_in_the_data_directory_stop_the_server_at_start() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("keys")).unwrap();
    std::fs::write(dir.path().join("keys/targets.key"), "00").unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let err = skerry_server::serve(
        listener,
        skerry_server::ServerConfig::new(dir.path().into()),
        async {},
    )
    .await
    .unwrap_err();
    let text = skerry_server::timestamp::chain(&err);
    assert!(text.contains("targets.key is an offline key"), "{text}");
}
