//! The rollout decision, rule by rule.

mod support;

use skerry_rollout::*;
use support::*;

#[test]
fn an_everyone_rollout_offers_its_release_to_an_older_device() {
    let r = rollout("r1", "1.1.0", WaveSchedule::all_at_once());
    let verdict = decide_one(no_fleet(), &device("d1", "1.0.0"), &r, &[], T0);
    let Decision::Offer(offer) = verdict.decision else {
        panic!("{verdict:?}")
    };
    assert_eq!(offer.release.version, v("1.1.0"));
    assert_eq!(offer.rollout_id.as_deref(), Some("r1"));
    assert_eq!(offer.wave, Some(0));
    assert!(!offer.forced);
}

#[test]
fn a_device_already_on_the_release_or_newer_is_up_to_date() {
    let r = rollout("r1", "1.1.0", WaveSchedule::all_at_once());
    for current in ["1.1.0", "2.0.0"] {
        let verdict = decide_one(no_fleet(), &device("d1", current), &r, &[], T0);
        assert_eq!(
            verdict.decision,
            Decision::Hold(Hold::UpToDate),
            "{current}"
        );
    }
}

#[test]
fn only_releases_of_the_devices_own_channel_and_board_are_offered() {
    let mut beta = rollout("beta", "1.2.0", WaveSchedule::all_at_once());
    beta.release.channel = "beta".into();
    let mut other_board = rollout("x86", "1.3.0", WaveSchedule::all_at_once());
    other_board.release.board = "x86".into();
    let d = device("d1", "1.0.0");
    let candidates = [
        Candidate {
            rollout: &beta,
            stats: &[],
        },
        Candidate {
            rollout: &other_board,
            stats: &[],
        },
    ];
    assert_eq!(
        decide(no_fleet(), &d, &candidates, T0).decision,
        Decision::Hold(Hold::UpToDate)
    );

    let mut on_beta = d.clone();
    on_beta.channel = "beta".into();
    assert_eq!(
        offered(&decide(no_fleet(), &on_beta, &candidates, T0)),
        Some(v("1.2.0"))
    );
}

#[test]
fn the_newest_offering_rollout_wins_and_a_paused_newer_one_falls_back_to_an_older() {
    let older = rollout("r1", "1.1.0", WaveSchedule::all_at_once());
    let mut newer = rollout("r2", "1.2.0", WaveSchedule::all_at_once());
    let d = device("d1", "1.0.0");
    let both = |n: &Rollout| {
        decide(
            no_fleet(),
            &d,
            &[
                Candidate {
                    rollout: &older,
                    stats: &[],
                },
                Candidate {
                    rollout: n,
                    stats: &[],
                },
            ],
            T0,
        )
    };
    assert_eq!(offered(&both(&newer)), Some(v("1.2.0")));
    newer.state = RolloutState::Paused {
        since: T0,
        reason: PauseReason::Operator {
            note: "wait".into(),
        },
    };
    assert_eq!(offered(&both(&newer)), Some(v("1.1.0")));
}

#[test]
fn waves_open_over_time_by_seed() {
    let r = rollout("r1", "1.1.0", three_waves());
    let early = device_at(500, "1.0.0"); // wave 0 (below 10 %)
    let middle = device_at(3000, "1.0.0"); // wave 1 (below 50 %)
    let late = device_at(9999, "1.0.0"); // wave 2
    let at = |d: &DeviceFacts, secs| offered(&decide_one(no_fleet(), d, &r, &[], T0.plus(secs)));
    assert!(at(&early, 0).is_some());
    assert!(at(&middle, 0).is_none());
    assert!(at(&middle, HOUR).is_some());
    assert!(at(&late, HOUR).is_none());
    assert!(at(&late, 2 * HOUR).is_some());
    // Before the rollout starts, nobody.
    let before = decide_one(no_fleet(), &early, &r, &[], UnixTime(T0.0 - 1));
    assert!(matches!(
        before.decision,
        Decision::Hold(Hold::WaveNotOpen { wave: Some(0), .. })
    ));
    // The hold says when the device's wave opens.
    let held = decide_one(no_fleet(), &middle, &r, &[], T0);
    assert_eq!(
        held.decision,
        Decision::Hold(Hold::WaveNotOpen {
            rollout_id: "r1".into(),
            wave: Some(1),
            opens_at: Some(T0.plus(HOUR))
        })
    );
}

#[test]
fn a_schedule_that_never_reaches_a_seed_never_offers_it() {
    let r = rollout(
        "r1",
        "1.1.0",
        WaveSchedule::new(vec![Wave {
            after_secs: 0,
            basis_points: 100,
        }])
        .unwrap(),
    );
    let verdict = decide_one(
        no_fleet(),
        &device_at(100, "1.0.0"),
        &r,
        &[],
        T0.plus(10 * HOUR),
    );
    assert!(matches!(
        verdict.decision,
        Decision::Hold(Hold::WaveNotOpen {
            wave: None,
            opens_at: None,
            ..
        })
    ));
    assert!(offered(&decide_one(
        no_fleet(),
        &device_at(99, "1.0.0"),
        &r,
        &[],
        T0
    ))
    .is_some());
}

#[test]
fn bad_schedules_are_refused_by_name() {
    assert_eq!(WaveSchedule::new(vec![]), Err(WaveError::Empty));
    let w = |a, b| Wave {
        after_secs: a,
        basis_points: b,
    };
    assert_eq!(
        WaveSchedule::new(vec![w(0, 10_001)]),
        Err(WaveError::OverFull {
            index: 0,
            basis_points: 10_001
        })
    );
    assert_eq!(
        WaveSchedule::new(vec![w(0, 10), w(0, 20)]),
        Err(WaveError::NotIncreasing {
            index: 1,
            previous: 0
        })
    );
    assert_eq!(
        WaveSchedule::new(vec![w(0, 20), w(5, 20)]),
        Err(WaveError::NotIncreasing {
            index: 1,
            previous: 0
        })
    );
    assert!(matches!(
        WaveSchedule::new((0..33).map(|i| w(i, i as u16 + 1)).collect()),
        Err(WaveError::TooMany { count: 33 })
    ));
}

#[test]
fn a_release_the_device_rolled_back_from_is_never_offered_unless_forced() {
    let mut r = rollout("r1", "1.1.0", WaveSchedule::all_at_once());
    let mut d = device("d1", "1.0.0");
    d.rolled_back_from.insert(v("1.1.0"));
    let verdict = decide_one(no_fleet(), &d, &r, &[], T0);
    assert_eq!(
        verdict.decision,
        Decision::Hold(Hold::RolledBack {
            rollout_id: Some("r1".into()),
            version: v("1.1.0")
        })
    );
    r.force = true;
    let Decision::Offer(offer) = decide_one(no_fleet(), &d, &r, &[], T0).decision else {
        panic!()
    };
    assert!(offer.forced);
    // A rollback from another release does not matter.
    let mut other = device("d2", "1.0.0");
    other.rolled_back_from.insert(v("1.0.5"));
    r.force = false;
    assert!(offered(&decide_one(no_fleet(), &other, &r, &[], T0)).is_some());
}

#[test]
fn paused_and_aborted_rollouts_offer_nothing_and_say_why() {
    let mut r = rollout("r1", "1.1.0", WaveSchedule::all_at_once());
    let d = device("d1", "1.0.0");
    let reason = PauseReason::Operator {
        note: "checking".into(),
    };
    r.state = RolloutState::Paused {
        since: T0,
        reason: reason.clone(),
    };
    assert_eq!(
        decide_one(no_fleet(), &d, &r, &[], T0).decision,
        Decision::Hold(Hold::Paused {
            rollout_id: "r1".into(),
            reason
        })
    );
    r.state = RolloutState::Aborted;
    assert_eq!(
        decide_one(no_fleet(), &d, &r, &[], T0).decision,
        Decision::Hold(Hold::Aborted {
            rollout_id: "r1".into()
        })
    );
}

#[test]
fn a_wave_over_its_failure_threshold_pauses_the_rollout_with_the_reason() {
    let r = rollout("r1", "1.1.0", three_waves()); // gate: > 20 %
    let d = device_at(100, "1.0.0");
    let ok = [WaveStats {
        started: 5,
        committed: 4,
        failed: 1,
        rolled_back: 0,
    }]; // exactly 20 %
    assert!(offered(&decide_one(no_fleet(), &d, &r, &ok, T0)).is_some());
    let bad = [WaveStats {
        started: 3,
        committed: 2,
        failed: 0,
        rolled_back: 1,
    }]; // 33 %
    let verdict = decide_one(no_fleet(), &d, &r, &bad, T0);
    let reason = PauseReason::Health {
        wave: 0,
        started: 3,
        bad: 1,
        max_bad_permille: 200,
    };
    assert_eq!(verdict.pause, Some(("r1".into(), reason.clone())));
    assert_eq!(
        verdict.decision,
        Decision::Hold(Hold::Paused {
            rollout_id: "r1".into(),
            reason: reason.clone()
        })
    );
    assert_eq!(
        reason.to_string(),
        "paused automatically: 1 of 3 devices in wave 1 failed or rolled back (threshold 20.0 %)"
    );
}

#[test]
fn the_gate_counts_failures_of_earlier_waves_still_reporting_but_not_of_waves_not_yet_open() {
    let r = rollout("r1", "1.1.0", three_waves());
    let d = device_at(100, "1.0.0");
    let healthy = WaveStats {
        started: 10,
        committed: 10,
        ..WaveStats::default()
    };
    let broken = WaveStats {
        started: 2,
        failed: 2,
        ..WaveStats::default()
    };
    // Wave 1's stats are bad but only wave 0 is open: ignored (cannot happen live, but
    // the gate must not look ahead).
    assert!(offered(&decide_one(no_fleet(), &d, &r, &[healthy, broken], T0)).is_some());
    // An hour later wave 1 is open and counted.
    assert!(
        decide_one(no_fleet(), &d, &r, &[healthy, broken], T0.plus(HOUR))
            .pause
            .is_some()
    );
    // Two hours later, wave 0 turning bad still pauses.
    let verdict = decide_one(
        no_fleet(),
        &d,
        &r,
        &[broken, healthy, healthy],
        T0.plus(2 * HOUR),
    );
    assert!(matches!(
        verdict.pause,
        Some((_, PauseReason::Health { wave: 0, .. }))
    ));
}

#[test]
fn the_minimum_sample_keeps_one_early_failure_from_counting_as_everything() {
    let mut r = rollout("r1", "1.1.0", WaveSchedule::all_at_once());
    r.gate = HealthGate {
        max_bad_permille: 100,
        min_sample: 20,
    };
    let d = device("d1", "1.0.0");
    let one = [WaveStats {
        started: 1,
        failed: 1,
        ..WaveStats::default()
    }];
    assert!(decide_one(no_fleet(), &d, &r, &one, T0).pause.is_none()); // 1/20 = 5 %
    let three = [WaveStats {
        started: 3,
        failed: 3,
        ..WaveStats::default()
    }];
    assert!(decide_one(no_fleet(), &d, &r, &three, T0).pause.is_some()); // 3/20 = 15 %
    r.gate = HealthGate {
        max_bad_permille: 0,
        min_sample: 1,
    };
    assert!(decide_one(no_fleet(), &d, &r, &one, T0).pause.is_some());
}

#[test]
fn resuming_moves_the_schedule_on_by_the_pause() {
    let mut r = rollout("r1", "1.1.0", three_waves());
    r.state = RolloutState::Paused {
        since: T0.plus(600),
        reason: PauseReason::Operator {
            note: String::new(),
        },
    };
    let (state, started) = r.resumed(T0.plus(600 + 5 * HOUR)).unwrap();
    assert_eq!(state, RolloutState::Active);
    assert_eq!(started, T0.plus(5 * HOUR));
    r.state = RolloutState::Active;
    r.started_at = started;
    // Ten minutes of running before the pause: wave 1 is still 50 minutes away.
    let middle = device_at(3000, "1.0.0");
    assert!(offered(&decide_one(
        no_fleet(),
        &middle,
        &r,
        &[],
        T0.plus(600 + 5 * HOUR)
    ))
    .is_none());
    assert!(offered(&decide_one(no_fleet(), &middle, &r, &[], T0.plus(6 * HOUR))).is_some());
    assert_eq!(r.resumed(T0), None);
}

#[test]
fn maintenance_windows_apply_to_their_label_group_only() {
    // T0 = 2023-11-14T22:13:20Z, a Tuesday.
    let r = rollout("r1", "1.1.0", WaveSchedule::all_at_once());
    let mine = [("site".to_string(), "mine-7".to_string())]
        .into_iter()
        .collect();
    // Every night 23:00–01:00 UTC.
    let windows = [MaintenanceWindow::new(mine, Weekdays::EVERY_DAY, 23 * 60, 120).unwrap()];
    let fleet = Fleet {
        releases: &[],
        windows: &windows,
    };
    let mut at_mine = device("d1", "1.0.0");
    at_mine.labels.insert("site".into(), "mine-7".into());
    let elsewhere = device("d2", "1.0.0");
    assert_eq!(
        decide_one(fleet, &at_mine, &r, &[], T0).decision,
        Decision::Hold(Hold::OutsideWindow {
            rollout_id: Some("r1".into())
        })
    );
    assert!(offered(&decide_one(fleet, &elsewhere, &r, &[], T0)).is_some());
    let at_2330 = T0.plus(77 * 60);
    assert!(offered(&decide_one(fleet, &at_mine, &r, &[], at_2330)).is_some());
    let after_midnight = T0.plus(77 * 60 + HOUR); // 00:30 Wednesday, yesterday's window
    assert!(offered(&decide_one(fleet, &at_mine, &r, &[], after_midnight)).is_some());
    let at_0100 = T0.plus(10_000); // 01:00:00 exactly: closed
    assert!(offered(&decide_one(
        fleet,
        &at_mine,
        &r,
        &[],
        UnixTime(at_0100.0 - 1)
    ))
    .is_some());
    assert!(offered(&decide_one(fleet, &at_mine, &r, &[], at_0100)).is_none());
}

#[test]
fn a_window_on_some_weekdays_only_opens_on_those_days() {
    // Saturdays (bit 5) 02:00–04:00. 2023-11-18 is a Saturday.
    let w = MaintenanceWindow::new(
        Default::default(),
        Weekdays::from_bits(1 << 5).unwrap(),
        120,
        120,
    )
    .unwrap();
    let saturday_3am = UnixTime(1_700_276_400); // 2023-11-18T03:00:00Z
    assert!(w.is_open(saturday_3am));
    assert!(!w.is_open(UnixTime(saturday_3am.0 - 86_400)));
    assert!(!w.is_open(UnixTime(saturday_3am.0 + 86_400)));
    assert_eq!(Weekdays::from_bits(0), Err(WindowError::Days { bits: 0 }));
    assert_eq!(
        Weekdays::from_bits(0x80),
        Err(WindowError::Days { bits: 0x80 })
    );
    assert_eq!(
        MaintenanceWindow::new(Default::default(), Weekdays::EVERY_DAY, 1440, 1),
        Err(WindowError::Start { start: 1440 })
    );
    assert_eq!(
        MaintenanceWindow::new(Default::default(), Weekdays::EVERY_DAY, 0, 0),
        Err(WindowError::Length { length: 0 })
    );
}

#[test]
fn an_operator_pin_wins_over_every_rollout() {
    let releases = [
        release("1.0.5", "stable"),
        release("1.1.0", "stable"),
        release("1.2.0", "beta"),
    ];
    let fleet = Fleet {
        releases: &releases,
        windows: &[],
    };
    let r = rollout("r1", "1.1.0", WaveSchedule::all_at_once());
    let mut d = device("d1", "1.0.0");
    d.pin = Some(Pin {
        version: v("1.0.5"),
        force: false,
    });
    let Decision::Offer(offer) = decide_one(fleet, &d, &r, &[], T0).decision else {
        panic!()
    };
    assert_eq!(
        (offer.release.version, offer.rollout_id),
        (v("1.0.5"), None)
    );
    // On the pinned release: stays, even though the rollout would offer 1.1.0.
    d.version = v("1.0.5");
    assert_eq!(
        decide_one(fleet, &d, &r, &[], T0).decision,
        Decision::Hold(Hold::Pinned {
            version: v("1.0.5")
        })
    );
    // A pin may go down, too.
    d.version = v("1.1.0");
    assert_eq!(
        offered(&decide_one(fleet, &d, &r, &[], T0)),
        Some(v("1.0.5"))
    );
    // A pin to a release of another channel, or one the repository lacks, is refused.
    d.pin = Some(Pin {
        version: v("1.2.0"),
        force: false,
    });
    assert_eq!(
        decide_one(fleet, &d, &r, &[], T0).decision,
        Decision::Hold(Hold::PinUnavailable {
            version: v("1.2.0")
        })
    );
    // A pin to a release it rolled back from needs force.
    d.version = v("1.0.0");
    d.pin = Some(Pin {
        version: v("1.1.0"),
        force: false,
    });
    d.rolled_back_from.insert(v("1.1.0"));
    assert!(matches!(
        decide_one(fleet, &d, &r, &[], T0).decision,
        Decision::Hold(Hold::RolledBack {
            rollout_id: None,
            ..
        })
    ));
    d.pin = Some(Pin {
        version: v("1.1.0"),
        force: true,
    });
    let Decision::Offer(offer) = decide_one(fleet, &d, &r, &[], T0).decision else {
        panic!()
    };
    assert!(offer.forced);
}
