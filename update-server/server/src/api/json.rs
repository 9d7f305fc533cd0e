//! Store and rollout values as the API's JSON (the shapes `skerryctl fleet` and the
//! dashboard read).

use serde_json::{json, Value};
use skerry_fleet_store::{
    DevicePage, DeviceRecord, DeviceSummary, FleetOverview, RolloutWithStats, TimelineEntry,
};
use skerry_rollout::{PauseReason, Release, RolloutState};

pub fn release(r: &Release) -> Value {
    json!({"board": r.board, "version": r.version.to_string(), "channel": r.channel})
}

pub fn overview(o: &FleetOverview) -> Value {
    let pairs = |v: &[(String, u64)]| {
        v.iter()
            .map(|(k, n)| json!({"name": k, "devices": n}))
            .collect::<Vec<_>>()
    };
    json!({"devices": o.devices, "versions": pairs(&o.versions), "health": pairs(&o.health)})
}

pub fn rollout(r: &RolloutWithStats) -> Value {
    let ro = &r.rollout;
    let (state, reason, automatic) = match &ro.state {
        RolloutState::Active => ("active", None, false),
        RolloutState::Paused { reason, .. } => (
            "paused",
            Some(reason.to_string()),
            matches!(reason, PauseReason::Health { .. }),
        ),
        RolloutState::Aborted => ("aborted", None, false),
    };
    let waves: Vec<Value> = ro
        .waves
        .waves()
        .iter()
        .zip(
            r.stats
                .iter()
                .copied()
                .chain(std::iter::repeat(Default::default())),
        )
        .enumerate()
        .map(|(i, (w, s))| {
            json!({
                "wave": i + 1,
                "after_secs": w.after_secs,
                "percent": f64::from(w.basis_points) / 100.0,
                "started": s.started,
                "committed": s.committed,
                "failed": s.failed,
                "rolled_back": s.rolled_back,
            })
        })
        .collect();
    json!({
        "id": ro.id,
        "release": release(&ro.release),
        "state": state,
        "pause_reason": reason,
        "paused_automatically": automatic,
        "started_at": ro.started_at.0,
        "max_bad_permille": ro.gate.max_bad_permille,
        "min_sample": ro.gate.min_sample,
        "force": ro.force,
        "waves": waves,
    })
}

fn summary(d: &DeviceSummary) -> Value {
    json!({
        "id": d.id, "board": d.board, "version": d.version, "channel": d.channel,
        "health": d.health, "last_seen": d.last_seen.0, "pin": d.pin,
    })
}

pub fn device_page(p: &DevicePage) -> Value {
    json!({
        "devices": p.devices.iter().map(summary).collect::<Vec<_>>(),
        "next_after": p.next_after,
    })
}

pub fn device(d: &DeviceRecord, timeline: &[TimelineEntry]) -> Value {
    json!({
        "id": d.id, "board": d.board, "version": d.version.to_string(), "channel": d.channel,
        "labels": d.labels, "health": d.health,
        "first_seen": d.first_seen.0, "last_seen": d.last_seen.0,
        "pin": d.pin.as_ref().map(|p| json!({"version": p.version.to_string(), "force": p.force})),
        "timeline": timeline.iter().map(|t| json!({
            "seq": t.seq, "at": t.at.0, "kind": t.kind, "version": t.version, "detail": t.detail,
        })).collect::<Vec<_>>(),
    })
}
