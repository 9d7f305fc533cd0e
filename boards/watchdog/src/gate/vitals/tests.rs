use super::*;
use crate::clock::ManualClock;

const SECOND: Duration = Duration::from_secs(1);

fn healthy() -> (Vitals, ManualClock, Lease, Lease, HealthReport) {
    let clock = ManualClock::new();
    let vitals = Vitals::new(clock.clone());
    let controller = vitals.controller("network", 10 * SECOND).unwrap();
    let store = vitals.state_writes("state", 5 * SECOND).unwrap();
    let check = vitals.health_check("api", 20 * SECOND).unwrap();
    check.pass();
    (vitals, clock, controller, store, check)
}

#[test]
fn fresh_leases_and_passing_checks_are_healthy() {
    let (vitals, clock, controller, store, check) = healthy();
    for _ in 0..10 {
        clock.advance(4 * SECOND);
        controller.renew();
        store.renew();
        check.pass();
        assert_eq!(vitals.check(), Ok(()));
    }
}

#[test]
fn a_lease_not_renewed_within_its_deadline_is_overdue() {
    let (vitals, clock, _controller, store, check) = healthy();
    clock.advance(9 * SECOND);
    store.renew();
    check.pass();
    assert_eq!(vitals.check(), Ok(()));
    clock.advance(3 * SECOND);
    store.renew();
    let err = vitals.check().unwrap_err();
    assert_eq!(
        err.problems,
        vec![Problem::Overdue {
            kind: VitalKind::Controller,
            name: "network".into(),
            late_by: 2 * SECOND
        }]
    );
    assert!(
        err.to_string()
            .contains("controller \"network\" is 2s past its deadline"),
        "{err}"
    );
}

#[test]
fn a_check_fails_until_its_first_pass_and_a_pass_goes_stale() {
    let clock = ManualClock::new();
    let vitals = Vitals::new(clock.clone());
    let _c = vitals.controller("c", 100 * SECOND).unwrap();
    let _s = vitals.state_writes("s", 100 * SECOND).unwrap();
    let check = vitals.health_check("http", 10 * SECOND).unwrap();
    let err = vitals.check().unwrap_err();
    assert!(
        matches!(&err.problems[..], [Problem::Failing { name, .. }] if name == "http"),
        "{err}"
    );
    check.pass();
    assert_eq!(vitals.check(), Ok(()));
    clock.advance(10 * SECOND);
    let err = vitals.check().unwrap_err();
    assert!(
        matches!(
            &err.problems[..],
            [Problem::Overdue {
                kind: VitalKind::HealthCheck,
                ..
            }]
        ),
        "{err}"
    );
}

#[test]
fn a_failing_check_withholds_until_it_passes_again() {
    let (vitals, _clock, _controller, _store, check) = healthy();
    check.fail("connection refused");
    let err = vitals.check().unwrap_err();
    assert!(
        err.to_string()
            .contains("\"api\" fails: connection refused"),
        "{err}"
    );
    check.pass();
    assert_eq!(vitals.check(), Ok(()));
}

#[test]
fn without_a_controller_and_a_state_write_lease_it_is_never_healthy() {
    let vitals = Vitals::new(ManualClock::new());
    let err = vitals.check().unwrap_err();
    assert_eq!(
        err.problems,
        vec![
            Problem::Missing {
                kind: VitalKind::Controller
            },
            Problem::Missing {
                kind: VitalKind::StateWrite
            }
        ]
    );
}

#[test]
fn registrations_are_checked() {
    let (vitals, ..) = healthy();
    assert_eq!(
        vitals.controller("api", SECOND).unwrap_err(),
        VitalsError::Duplicate { name: "api".into() }
    );
    assert!(matches!(
        vitals.state_writes("x", Duration::ZERO),
        Err(VitalsError::ZeroDeadline { .. })
    ));
    for i in 3..MAX_VITALS {
        vitals.health_check(&format!("check-{i}"), SECOND).unwrap();
    }
    assert_eq!(
        vitals.health_check("one-too-many", SECOND).unwrap_err(),
        VitalsError::TooMany {
            name: "one-too-many".into(),
            limit: MAX_VITALS
        }
    );
}

#[test]
fn long_failure_reasons_are_cut_on_a_char_boundary() {
    let (vitals, _clock, _c, _s, check) = healthy();
    check.fail(&"é".repeat(MAX_REASON_LEN));
    let err = vitals.check().unwrap_err();
    let [Problem::Failing { reason, .. }] = &err.problems[..] else {
        panic!("{err}")
    };
    assert!(reason.len() <= MAX_REASON_LEN && reason.len() > MAX_REASON_LEN - 2);
}

#[test]
fn a_required_check_nobody_reports_withholds_the_feeds_until_registered() {
    let (vitals, _clock, _controller, _store, _check) = healthy();
    vitals
        .require_health_checks(&["api".into(), "web/http".into()])
        .unwrap();
    let err = vitals.check().unwrap_err();
    assert_eq!(
        err.problems,
        vec![Problem::Unregistered {
            name: "web/http".into()
        }]
    );
    assert!(
        err.to_string().contains("\"web/http\" is required"),
        "{err}"
    );
    let web = vitals.health_check("web/http", 20 * SECOND).unwrap();
    web.pass();
    assert_eq!(vitals.check(), Ok(()));
    let too_many: Vec<String> = (0..=MAX_VITALS).map(|i| format!("c{i}")).collect();
    assert!(matches!(
        vitals.require_health_checks(&too_many),
        Err(VitalsError::TooMany { .. })
    ));
}

#[test]
fn a_lease_deadline_can_change_but_not_to_zero() {
    let (vitals, clock, controller, store, check) = healthy();
    controller.set_deadline(2 * SECOND).unwrap();
    clock.advance(3 * SECOND);
    store.renew();
    check.pass();
    assert!(matches!(
        &vitals.check().unwrap_err().problems[..],
        [Problem::Overdue { name, .. }] if name == "network"
    ));
    assert!(matches!(
        controller.set_deadline(Duration::ZERO),
        Err(VitalsError::ZeroDeadline { .. })
    ));
}
