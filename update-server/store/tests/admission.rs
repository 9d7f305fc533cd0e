//! A check-in's admission is checked by the store in the check-in's own transaction:
//! a plaintext check-in of an enrolled device, a certificate not issued here, one
//! superseded by re-enrollment, a revoked device are refused and write nothing; the
//! current certificate is taken. In the embedded store a refused check-in sharing a
//! group with others leaves theirs stored.

use std::collections::BTreeMap;
use std::sync::Arc;

use semver::Version;
use skerry_fleet_store::*;
use skerry_rollout::UnixTime;

const T0: u64 = 1_800_000_000;

fn check_in(device: &str, admission: Admission) -> CheckIn {
    CheckIn {
        device: device.into(),
        board: "pi".into(),
        version: Version::new(1, 0, 0),
        channel: "stable".into(),
        labels: BTreeMap::new(),
        slots: vec![],
        health: HealthReport {
            state: HealthState::Healthy,
            failing: vec![],
        },
        reports: vec![UpgradeReport {
            sequence: 1,
            target: Version::new(2, 0, 0),
            step: StepKind::Downloading,
            reason: "first".into(),
            at: UnixTime(T0),
        }],
        admission,
    }
}

fn cert(serial: &str) -> Admission {
    Admission::Certificate {
        serial: serial.into(),
    }
}

fn refusal(r: Result<CheckInRecord, StoreError>) -> Option<AdmissionRefusal> {
    match r {
        Err(StoreError::NotAdmitted { refusal, .. }) => Some(refusal),
        Ok(_) => None,
        Err(e) => panic!("a store error, not a refusal: {e}"),
    }
}

fn enroll<S: EnrollmentStore>(s: &S, device: &str, serial: &str, t: u64) {
    let identity = DeviceIdentity {
        device_id: device.into(),
        board: "pi".into(),
        serial: serial.into(),
        not_after: UnixTime(T0 + 86400),
    };
    s.enroll("aaaaaaaaaaaaaaaa", &[3; 32], &identity, UnixTime(t))
        .unwrap()
        .unwrap();
}

fn admission_suite<S: FleetStore + EnrollmentStore>(s: &S) {
    s.create_token(&NewJoinToken {
        id: "aaaaaaaaaaaaaaaa".into(),
        secret_sha256: [3; 32],
        uses: 10,
        created_at: UnixTime(T0),
        expires_at: UnixTime(T0 + 3600),
        labels: BTreeMap::new(),
    })
    .unwrap();
    let now = UnixTime(T0 + 5);
    let ci = |device: &str, a: Admission| refusal(s.check_in(&check_in(device, a), now));

    // Never enrolled: plaintext is taken, a certificate is not ours.
    assert_eq!(ci("fresh", Admission::NotEnrolled), None);
    assert_eq!(
        ci("stranger", cert("01")),
        Some(AdmissionRefusal::NotIssued)
    );
    assert!(
        s.device("stranger").unwrap().is_none(),
        "a refused check-in writes nothing"
    );

    enroll(s, "pi-1", "0a01", T0);
    assert_eq!(
        ci("pi-1", Admission::NotEnrolled),
        Some(AdmissionRefusal::Enrolled)
    );
    assert!(s.device("pi-1").unwrap().is_none());
    assert_eq!(ci("pi-1", cert("0a01")), None);
    assert_eq!(s.device("pi-1").unwrap().unwrap().acknowledged, 1);

    // Re-enrollment supersedes the old certificate; revocation refuses the new one.
    enroll(s, "pi-1", "0a02", T0 + 1);
    assert_eq!(ci("pi-1", cert("0a01")), Some(AdmissionRefusal::Superseded));
    assert_eq!(ci("pi-1", cert("0a02")), None);
    s.revoke_device("pi-1", UnixTime(T0 + 2)).unwrap();
    assert_eq!(ci("pi-1", cert("0a02")), Some(AdmissionRefusal::Revoked));
    // Open admission is the caller's word (a DDI token was checked already).
    assert_eq!(ci("pi-1", Admission::Open), None);
}

#[test]
fn sqlite_checks_admission_in_the_check_in() {
    let dir = tempfile::tempdir().unwrap();
    admission_suite(&SqliteStore::open(&dir.path().join("fleet.db")).unwrap());
}

#[path = "support/pg_cluster.rs"]
mod pg_cluster;

#[test]
fn postgres_checks_admission_in_the_check_in() {
    let cluster = pg_cluster::PgCluster::start();
    admission_suite(&PgStore::open(&cluster.database()).unwrap());
}

/// Many check-ins at once, every fourth a stranger's certificate: the refused ones are
/// refused, the rest stored, whatever groups the writer made of them.
#[test]
fn a_refused_check_in_does_not_fail_its_group() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("fleet.db")).unwrap());
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let outcomes = rt.block_on(async {
        let pending: Vec<_> = (0..200)
            .map(|n| {
                let admission = if n % 4 == 0 {
                    cert("ff")
                } else {
                    Admission::Open
                };
                let c = check_in(&format!("d{n}"), admission);
                Arc::clone(&store).check_in_async(c, UnixTime(T0))
            })
            .collect();
        let mut out = Vec::new();
        for p in pending {
            out.push(p.await);
        }
        out
    });
    for (n, outcome) in outcomes.into_iter().enumerate() {
        let device = format!("d{n}");
        if n % 4 == 0 {
            assert_eq!(
                refusal(outcome),
                Some(AdmissionRefusal::NotIssued),
                "{device}"
            );
            assert!(store.device(&device).unwrap().is_none(), "{device}");
        } else {
            let record = outcome.unwrap();
            assert_eq!(record.acknowledged, 1, "{device}");
            assert!(
                record.inputs.is_some(),
                "{device}: decision inputs read with it"
            );
        }
    }
}
