//! Properties of the decision that hold for every device, schedule and time.

mod support;

use proptest::prelude::*;
use skerry_rollout::*;
use support::*;

fn schedule() -> impl Strategy<Value = WaveSchedule> {
    prop::collection::btree_set((0u64..10 * 86_400, 1u16..=BASIS_POINTS), 1..8).prop_map(|pairs| {
        // Sort offsets and percentages independently, drop repeats, pair them up.
        let mut offsets: Vec<u64> = pairs.iter().map(|p| p.0).collect();
        let mut bps: Vec<u16> = pairs.iter().map(|p| p.1).collect();
        offsets.sort_unstable();
        offsets.dedup();
        bps.sort_unstable();
        bps.dedup();
        let waves = offsets
            .into_iter()
            .zip(bps)
            .map(|(after_secs, basis_points)| Wave {
                after_secs,
                basis_points,
            })
            .collect();
        WaveSchedule::new(waves).unwrap()
    })
}

proptest! {
    /// A device offered at some time is still offered at every later time (waves only grow).
    #[test]
    fn waves_are_monotonic_in_time(waves in schedule(), seed in 0u16..BASIS_POINTS, t1 in 0u64..20 * 86_400, dt in 0u64..20 * 86_400) {
        let r = rollout("r", "2.0.0", waves);
        let d = device_at(seed, "1.0.0");
        if offered(&decide_one(no_fleet(), &d, &r, &[], T0.plus(t1))).is_some() {
            prop_assert!(offered(&decide_one(no_fleet(), &d, &r, &[], T0.plus(t1 + dt))).is_some());
        }
    }

    /// At any time, a device offered with seed s means every device with a lower seed is
    /// offered too (a wave is a prefix of seeds), and the share offered matches the wave.
    #[test]
    fn waves_are_monotonic_in_seed(waves in schedule(), s in 0u16..BASIS_POINTS, lower in 0u16..BASIS_POINTS, t in 0u64..20 * 86_400) {
        let r = rollout("r", "2.0.0", waves.clone());
        let lower = lower.min(s);
        let now = T0.plus(t);
        if offered(&decide_one(no_fleet(), &device_at(s, "1.0.0"), &r, &[], now)).is_some() {
            prop_assert!(offered(&decide_one(no_fleet(), &device_at(lower, "1.0.0"), &r, &[], now)).is_some());
            let open = waves.current(T0, now).unwrap();
            prop_assert!(s < waves.waves()[open].basis_points);
        }
    }

    /// Whatever the schedule, stats or time: a release the device rolled back from is
    /// never offered by an unforced rollout.
    #[test]
    fn never_the_release_it_rolled_back_from(waves in schedule(), seed in 0u16..BASIS_POINTS, t in 0u64..20 * 86_400, failed in 0u32..5, started in 0u32..50) {
        let r = rollout("r", "2.0.0", waves);
        let mut d = device_at(seed, "1.0.0");
        d.rolled_back_from.insert(v("2.0.0"));
        let stats = [WaveStats { started, failed, ..WaveStats::default() }];
        prop_assert_eq!(offered(&decide_one(no_fleet(), &d, &r, &stats, T0.plus(t))), None);
    }

    /// An offer is always of the device's own board and channel, and newer than what it
    /// runs (no pin).
    #[test]
    fn offers_stay_in_channel_and_move_forward(
        current in 0u64..5, versions in prop::collection::vec((0u64..8, prop::bool::ANY, prop::bool::ANY), 1..6), t in 0u64..86_400
    ) {
        let rollouts: Vec<Rollout> = versions.iter().enumerate().map(|(i, (minor, beta, other_board))| {
            let mut r = rollout(&format!("r{i}"), &format!("1.{minor}.0"), WaveSchedule::all_at_once());
            if *beta { r.release.channel = "beta".into(); }
            if *other_board { r.release.board = "x86".into(); }
            r
        }).collect();
        let candidates: Vec<Candidate<'_>> = rollouts.iter().map(|r| Candidate { rollout: r, stats: &[] }).collect();
        let d = device("d", &format!("1.{current}.0"));
        if let Decision::Offer(o) = decide(no_fleet(), &d, &candidates, T0.plus(t)).decision {
            prop_assert_eq!(o.release.channel.as_str(), "stable");
            prop_assert_eq!(o.release.board.as_str(), "pi");
            prop_assert!(o.release.version > d.version);
            // And it is the newest such release.
            let newest = rollouts.iter().filter(|r| r.release.channel == "stable" && r.release.board == "pi").map(|r| r.release.version.clone()).max();
            prop_assert_eq!(Some(o.release.version), newest);
        }
    }

    /// The seed is a pure function of the id.
    #[test]
    fn the_seed_is_stable(id in "[a-z0-9-]{1,40}") {
        prop_assert_eq!(WaveSeed::of(&id), WaveSeed::of(&id.clone()));
        prop_assert!(WaveSeed::of(&id).basis_points() < BASIS_POINTS);
    }
}

#[test]
fn seeds_spread_over_the_range() {
    // 2000 ids: each tenth of the range gets between 5 % and 15 % of them.
    let mut buckets = [0u32; 10];
    for i in 0..2000 {
        buckets[usize::from(WaveSeed::of(&format!("device-{i}")).basis_points() / 1000)] += 1;
    }
    assert!(
        buckets.iter().all(|&n| (100..=300).contains(&n)),
        "{buckets:?}"
    );
}
