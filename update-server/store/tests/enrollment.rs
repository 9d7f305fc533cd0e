//! The conformance suite for [`EnrollmentStore`]: every implementation runs
//! [`enrollment_suite`] (the SQLite one here). Tokens: expiry, use limit counted once
//! under concurrent enrollment, revocation, wrong secrets; identities superseded by
//! re-enrollment, revocation; device logs bounded with the oldest dropped.

use std::collections::BTreeMap;
use std::sync::Arc;

use skerry_fleet_store::{
    DeviceIdentity, EnrollRefusal, EnrollmentStore, LogKind, LogRefusal, LogSource, NewJoinToken,
    SqliteStore, StoreError, TokenRefusal, DEVICE_EVENT_LIMIT, DEVICE_LOG_LIMIT,
};
use skerry_rollout::UnixTime;

const T0: u64 = 1_800_000_000;

fn token(id: &str, secret: u8, uses: u32) -> NewJoinToken {
    NewJoinToken {
        id: id.to_string(),
        secret_sha256: [secret; 32],
        uses,
        created_at: UnixTime(T0),
        expires_at: UnixTime(T0 + 3600),
        labels: BTreeMap::from([("site".to_string(), "mine-7".to_string())]),
    }
}

fn identity(device: &str, serial: &str) -> DeviceIdentity {
    DeviceIdentity {
        device_id: device.to_string(),
        board: "pi".to_string(),
        serial: serial.to_string(),
        not_after: UnixTime(T0 + 365 * 86400),
    }
}

fn enroll<S: EnrollmentStore>(
    s: &S,
    tok: &str,
    secret: u8,
    device: &str,
    serial: &str,
    t: u64,
) -> Result<(), EnrollRefusal> {
    s.enroll(tok, &[secret; 32], &identity(device, serial), UnixTime(t))
        .unwrap()
}

pub fn enrollment_suite<S: EnrollmentStore>(mk: impl Fn() -> S) {
    tokens_expire_run_out_and_revoke(&mk());
    uses_are_counted_once_under_concurrency(Arc::new(mk()));
    identities_are_superseded_and_revoked(&mk());
    logs_are_bounded_and_authorized(&mk());
}

fn tokens_expire_run_out_and_revoke<S: EnrollmentStore>(s: &S) {
    s.create_token(&token("aaaaaaaaaaaaaaaa", 1, 2)).unwrap();
    assert_eq!(
        enroll(s, "bbbbbbbbbbbbbbbb", 1, "d1", "01", T0),
        Err(EnrollRefusal::Token(TokenRefusal::Unknown))
    );
    assert_eq!(
        enroll(s, "aaaaaaaaaaaaaaaa", 2, "d1", "01", T0),
        Err(EnrollRefusal::Token(TokenRefusal::WrongSecret))
    );
    assert_eq!(
        enroll(s, "aaaaaaaaaaaaaaaa", 1, "d1", "01", T0 + 3600),
        Err(EnrollRefusal::Token(TokenRefusal::Expired))
    );
    assert_eq!(enroll(s, "aaaaaaaaaaaaaaaa", 1, "d1", "01", T0), Ok(()));
    assert_eq!(enroll(s, "aaaaaaaaaaaaaaaa", 1, "d2", "02", T0 + 1), Ok(()));
    assert_eq!(
        enroll(s, "aaaaaaaaaaaaaaaa", 1, "d3", "03", T0 + 2),
        Err(EnrollRefusal::Token(TokenRefusal::UsedUp))
    );
    assert!(
        s.identity("d3").unwrap().is_none(),
        "a refused enrollment records nothing"
    );
    let listed = s.tokens().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!((listed[0].uses, listed[0].used), (2, 2));
    assert_eq!(listed[0].labels["site"], "mine-7");

    s.create_token(&token("cccccccccccccccc", 3, 5)).unwrap();
    s.revoke_token("cccccccccccccccc", UnixTime(T0 + 5))
        .unwrap();
    assert_eq!(
        enroll(s, "cccccccccccccccc", 3, "d4", "04", T0 + 6),
        Err(EnrollRefusal::Token(TokenRefusal::Revoked))
    );
    let revoked = s
        .tokens()
        .unwrap()
        .into_iter()
        .find(|t| t.id == "cccccccccccccccc")
        .unwrap();
    assert_eq!(revoked.revoked_at, Some(UnixTime(T0 + 5)));
    assert!(matches!(
        s.revoke_token("dddddddddddddddd", UnixTime(T0)),
        Err(StoreError::NoSuchToken { .. })
    ));
}

fn uses_are_counted_once_under_concurrency<S: EnrollmentStore>(s: Arc<S>) {
    s.create_token(&token("eeeeeeeeeeeeeeee", 9, 3)).unwrap();
    let threads: Vec<_> = (0..8)
        .map(|i| {
            let s = Arc::clone(&s);
            std::thread::spawn(move || {
                enroll(
                    &*s,
                    "eeeeeeeeeeeeeeee",
                    9,
                    &format!("c{i}"),
                    &format!("{i:02x}"),
                    T0,
                )
                .is_ok()
            })
        })
        .collect();
    let ok = threads
        .into_iter()
        .map(|t| t.join().unwrap())
        .filter(|&b| b)
        .count();
    assert_eq!(ok, 3, "a token of 3 uses enrolls exactly 3 devices");
    assert_eq!(s.identities().unwrap().len(), 3);
}

fn identities_are_superseded_and_revoked<S: EnrollmentStore>(s: &S) {
    s.create_token(&token("ffffffffffffffff", 7, 10)).unwrap();
    enroll(s, "ffffffffffffffff", 7, "dev-a", "0a01", T0).unwrap();
    enroll(s, "ffffffffffffffff", 7, "dev-a", "0a02", T0 + 10).unwrap();
    let current = s.identity("dev-a").unwrap().unwrap();
    assert_eq!(current.identity.serial, "0a02", "re-enrollment supersedes");
    assert_eq!(current.enrolled_at, UnixTime(T0 + 10));
    assert_eq!(current.token_id, "ffffffffffffffff");
    s.revoke_device("dev-a", UnixTime(T0 + 20)).unwrap();
    assert_eq!(
        s.identity("dev-a").unwrap().unwrap().revoked_at,
        Some(UnixTime(T0 + 20))
    );
    assert_eq!(
        enroll(s, "ffffffffffffffff", 7, "dev-a", "0a03", T0 + 30),
        Err(EnrollRefusal::DeviceRevoked),
        "a revoked device cannot enroll itself back"
    );
    assert!(matches!(
        s.revoke_device("never-enrolled", UnixTime(T0)),
        Err(StoreError::NoSuchDevice { .. })
    ));
}

fn lines(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}")).collect()
}

fn logs_are_bounded_and_authorized<S: EnrollmentStore>(s: &S) {
    s.create_token(&token("1111111111111111", 4, 2)).unwrap();
    let by_token = LogSource::Token {
        id: "1111111111111111".to_string(),
        secret_sha256: [4; 32],
    };
    let t = UnixTime(T0 + 1);
    // A device that never enrolled writes by token; the oldest lines are dropped.
    s.append_device_log(
        "boot-fail",
        &by_token,
        LogKind::Console,
        &lines("a", DEVICE_LOG_LIMIT),
        t,
    )
    .unwrap()
    .unwrap();
    s.append_device_log("boot-fail", &by_token, LogKind::Console, &lines("b", 10), t)
        .unwrap()
        .unwrap();
    let log = s.device_log("boot-fail", LogKind::Console).unwrap();
    assert_eq!(log.len(), DEVICE_LOG_LIMIT);
    assert_eq!(log[0].text, "a10");
    assert_eq!(log.last().unwrap().text, "b9");
    assert!(log.windows(2).all(|w| w[0].seq < w[1].seq));
    s.append_device_log(
        "boot-fail",
        &by_token,
        LogKind::Events,
        &lines("{\"e\":", DEVICE_EVENT_LIMIT + 3),
        t,
    )
    .unwrap()
    .unwrap();
    let events = s.device_log("boot-fail", LogKind::Events).unwrap();
    assert_eq!(events.len(), DEVICE_EVENT_LIMIT);
    assert_eq!(events[0].text, "{\"e\":3");
    assert!(
        s.device_log("other", LogKind::Console).unwrap().is_empty(),
        "kept per device"
    );

    // The token carries at most `uses` devices' logs.
    s.append_device_log("second", &by_token, LogKind::Console, &lines("x", 1), t)
        .unwrap()
        .unwrap();
    assert_eq!(
        s.append_device_log("third", &by_token, LogKind::Console, &lines("x", 1), t)
            .unwrap(),
        Err(LogRefusal::TokenDeviceLimit)
    );
    let wrong = LogSource::Token {
        id: "1111111111111111".to_string(),
        secret_sha256: [5; 32],
    };
    assert_eq!(
        s.append_device_log("boot-fail", &wrong, LogKind::Console, &lines("x", 1), t)
            .unwrap(),
        Err(LogRefusal::Token(TokenRefusal::WrongSecret))
    );
    assert_eq!(
        s.append_device_log(
            "boot-fail",
            &by_token,
            LogKind::Console,
            &lines("x", 1),
            UnixTime(T0 + 3600)
        )
        .unwrap(),
        Err(LogRefusal::Token(TokenRefusal::Expired))
    );

    // An enrolled device writes with its current certificate only.
    s.create_token(&token("2222222222222222", 6, 1)).unwrap();
    enroll(s, "2222222222222222", 6, "enrolled", "e1", T0).unwrap();
    let by_cert = LogSource::Certificate {
        serial: "e1".to_string(),
    };
    s.append_device_log("enrolled", &by_cert, LogKind::Console, &lines("ok", 2), t)
        .unwrap()
        .unwrap();
    assert_eq!(
        s.append_device_log("enrolled", &by_token, LogKind::Console, &lines("x", 1), t)
            .unwrap(),
        Err(LogRefusal::EnrolledDevice)
    );
    assert_eq!(
        s.append_device_log(
            "enrolled",
            &LogSource::Certificate {
                serial: "old".to_string()
            },
            LogKind::Console,
            &lines("x", 1),
            t
        )
        .unwrap(),
        Err(LogRefusal::NotCurrentCertificate)
    );
    s.revoke_device("enrolled", t).unwrap();
    assert_eq!(
        s.append_device_log("enrolled", &by_cert, LogKind::Console, &lines("x", 1), t)
            .unwrap(),
        Err(LogRefusal::DeviceRevoked)
    );
    assert_eq!(s.device_log("enrolled", LogKind::Console).unwrap().len(), 2);
}

#[test]
fn sqlite_passes_the_enrollment_suite() {
    let dir = tempfile::tempdir().unwrap();
    let n = std::sync::atomic::AtomicUsize::new(0);
    enrollment_suite(|| {
        let i = n.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        SqliteStore::open(&dir.path().join(format!("fleet-{i}.db"))).unwrap()
    });
}

#[path = "support/pg_cluster.rs"]
mod pg_cluster;

#[test]
fn postgres_passes_the_enrollment_suite() {
    let cluster = pg_cluster::PgCluster::start();
    enrollment_suite(|| skerry_fleet_store::PgStore::open(&cluster.database()).unwrap());
}
