//! Builders shared by the decision tests: a device, a release, a rollout.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};

use semver::Version;
use skerry_rollout::*;

pub const T0: UnixTime = UnixTime(1_700_000_000);
pub const HOUR: u64 = 3600;

pub fn v(s: &str) -> Version {
    Version::parse(s).unwrap()
}

pub fn device(id: &str, version: &str) -> DeviceFacts {
    DeviceFacts {
        id: id.into(),
        board: "pi".into(),
        channel: "stable".into(),
        labels: BTreeMap::new(),
        version: v(version),
        seed: WaveSeed::of(id),
        pin: None,
        rolled_back_from: BTreeSet::new(),
    }
}

pub fn release(version: &str, channel: &str) -> Release {
    Release {
        board: "pi".into(),
        version: v(version),
        channel: channel.into(),
    }
}

pub fn rollout(id: &str, version: &str, waves: WaveSchedule) -> Rollout {
    Rollout {
        id: id.into(),
        release: release(version, "stable"),
        started_at: T0,
        waves,
        gate: HealthGate::default(),
        state: RolloutState::Active,
        force: false,
    }
}

/// 10 % now, 50 % after an hour, everyone after two.
pub fn three_waves() -> WaveSchedule {
    WaveSchedule::new(vec![
        Wave {
            after_secs: 0,
            basis_points: 1000,
        },
        Wave {
            after_secs: HOUR,
            basis_points: 5000,
        },
        Wave {
            after_secs: 2 * HOUR,
            basis_points: BASIS_POINTS,
        },
    ])
    .unwrap()
}

pub fn no_fleet() -> Fleet<'static> {
    Fleet {
        releases: &[],
        windows: &[],
    }
}

pub fn decide_one(
    fleet: Fleet<'_>,
    d: &DeviceFacts,
    r: &Rollout,
    stats: &[WaveStats],
    now: UnixTime,
) -> Verdict {
    decide(fleet, d, &[Candidate { rollout: r, stats }], now)
}

pub fn offered(verdict: &Verdict) -> Option<Version> {
    match &verdict.decision {
        Decision::Offer(o) => Some(o.release.version.clone()),
        Decision::Hold(_) => None,
    }
}

/// A device whose seed is `bp` basis points.
pub fn device_at(bp: u16, version: &str) -> DeviceFacts {
    let mut d = device(&format!("seeded-{bp}"), version);
    d.seed = WaveSeed::from_basis_points(bp);
    d
}
