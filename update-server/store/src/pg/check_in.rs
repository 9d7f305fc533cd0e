//! The check-in's transaction in the PostgreSQL store: the device's row, its bounded
//! timeline, its rollbacks and its rollout outcomes, and the reads of them.

use std::collections::BTreeSet;

use postgres::{GenericClient, Transaction};
use skerry_rollout::{DeviceFacts, Pin, UnixTime, WaveSeed};

use super::get;
use super::rollouts::load_rollouts_only;
use crate::model::*;
use crate::sqlite::{health_text, labels_from, labels_to, parse_version, slots_json};
use crate::{CheckInRecord, StoreError};

/// One check-in inside its REPEATABLE READ transaction (see the module's note in
/// `pg/mod.rs`): the device's row first, then its timeline and the reports above the
/// acknowledged sequence, once each.
pub(super) fn check_in_tx(
    tx: &mut Transaction<'_>,
    c: &CheckIn,
    now: UnixTime,
) -> Result<CheckInRecord, StoreError> {
    let doing = "recording a check-in";
    if c.admission != crate::Admission::Open {
        // FOR SHARE: a revocation committed after this transaction's snapshot fails it
        // with a serialization error (retried, then refused), so a check-in is never
        // taken after the revocation that should refuse it was acknowledged.
        let identity = crate::pg::enrollment::identity_row_locked(tx, &c.device)?;
        c.admission.check(&c.device, identity.as_ref())?;
    }
    let before = device_record(tx, &c.device)?;
    let health = health_text(&c.health);
    let version = c.version.to_string();
    tx.execute(
        "INSERT INTO devices (id, board, version, channel, labels, health, slots, first_seen, last_seen)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)
                 ON CONFLICT (id) DO UPDATE SET board = $2, version = $3, channel = $4, labels = $5,
                     health = $6, slots = $7, last_seen = $8",
        &[
            &c.device,
            &c.board,
            &version,
            &c.channel,
            &labels_to(&c.labels),
            &health,
            &slots_json(&c.slots),
            &(now.0 as i64),
        ],
    )
    .map_err(StoreError::pg(doing))?;
    match &before {
        None => append_timeline(tx, &c.device, now, "enrolled", &version, &health)?,
        Some(b) if b.version != c.version => {
            append_timeline(tx, &c.device, now, "running", &version, &health)?
        }
        Some(b) if b.health != health => {
            append_timeline(tx, &c.device, now, "health", &version, &health)?
        }
        Some(_) => {}
    }
    let mut acked = before.as_ref().map_or(0, |b| b.acknowledged);
    let mut reports: Vec<&UpgradeReport> = c.reports.iter().collect();
    reports.sort_by_key(|r| r.sequence);
    for report in reports {
        if report.sequence <= acked {
            continue; // already stored: a resend after a lost answer
        }
        apply_report(tx, c, report, now)?;
        acked = report.sequence;
    }
    tx.execute(
        "UPDATE devices SET acknowledged = $2 WHERE id = $1",
        &[&c.device, &(acked as i64)],
    )
    .map_err(StoreError::pg(doing))?;
    Ok(CheckInRecord {
        facts: facts(tx, &c.device)?,
        acknowledged: acked,
        inputs: None,
    })
}

fn apply_report(
    tx: &mut Transaction<'_>,
    c: &CheckIn,
    report: &UpgradeReport,
    now: UnixTime,
) -> Result<(), StoreError> {
    let doing = "recording an upgrade report";
    let target = report.target.to_string();
    append_timeline(
        tx,
        &c.device,
        report.at,
        report.step.name(),
        &target,
        &report.reason,
    )?;
    if report.step == StepKind::RolledBack {
        tx.execute(
            "INSERT INTO device_rollbacks (device_id, version, at) VALUES ($1, $2, $3)
             ON CONFLICT DO NOTHING",
            &[&c.device, &target, &(now.0 as i64)],
        )
        .map_err(StoreError::pg(doing))?;
    }
    // Only the rollout itself: its stats are not needed here, and reading every
    // device's outcome would make concurrent check-ins of other devices conflict.
    let found = load_rollouts_only(
        tx,
        "WHERE board = $1 AND version = $2 AND channel = $3",
        &[&c.board, &target, &c.channel],
    )?;
    let Some(rollout) = found.into_iter().next() else {
        return Ok(());
    };
    let wave = rollout
        .waves
        .wave_of(WaveSeed::of(&c.device))
        .map(|w| w as i64);
    tx.execute(
        "INSERT INTO rollout_devices (rollout_id, device_id, wave, outcome, updated_at)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (rollout_id, device_id) DO UPDATE SET outcome = $4, updated_at = $5",
        &[
            &rollout.id,
            &c.device,
            &wave,
            &report.step.outcome(),
            &(now.0 as i64),
        ],
    )
    .map_err(StoreError::pg(doing))?;
    Ok(())
}

pub(super) fn append_timeline(
    tx: &mut impl GenericClient,
    device: &str,
    at: UnixTime,
    kind: &str,
    version: &str,
    detail: &str,
) -> Result<(), StoreError> {
    let doing = "appending to a timeline";
    let next: i64 = tx
        .query_one(
            "SELECT COALESCE(MAX(seq), 0) + 1 FROM timeline WHERE device_id = $1",
            &[&device],
        )
        .map_err(StoreError::pg(doing))?
        .get(0);
    tx.execute(
        "INSERT INTO timeline (device_id, seq, at, kind, version, detail) VALUES ($1, $2, $3, $4, $5, $6)",
        &[&device, &next, &(at.0 as i64), &kind, &version, &detail],
    )
    .map_err(StoreError::pg(doing))?;
    tx.execute(
        "DELETE FROM timeline WHERE device_id = $1 AND seq <= $2",
        &[&device, &(next - TIMELINE_LIMIT as i64)],
    )
    .map_err(StoreError::pg(doing))?;
    Ok(())
}

pub(super) fn device_record(
    tx: &mut impl GenericClient,
    id: &str,
) -> Result<Option<DeviceRecord>, StoreError> {
    let d = "reading a device";
    let Some(row) = tx
        .query_opt(
            "SELECT id, board, version, channel, labels, health, first_seen, last_seen,
                    pin_version, pin_force, acknowledged FROM devices WHERE id = $1",
            &[&id],
        )
        .map_err(StoreError::pg(d))?
    else {
        return Ok(None);
    };
    let id: String = get(&row, 0, d)?;
    let what = format!("device {id}");
    let version: String = get(&row, 2, d)?;
    let labels: String = get(&row, 4, d)?;
    let pin: Option<String> = get(&row, 8, d)?;
    let force: bool = get(&row, 9, d)?;
    Ok(Some(DeviceRecord {
        version: parse_version(&what, &version)?,
        labels: labels_from(&what, &labels)?,
        pin: pin
            .map(|v| parse_version(&what, &v).map(|version| Pin { version, force }))
            .transpose()?,
        board: get(&row, 1, d)?,
        channel: get(&row, 3, d)?,
        health: get(&row, 5, d)?,
        first_seen: UnixTime(get::<i64>(&row, 6, d)? as u64),
        last_seen: UnixTime(get::<i64>(&row, 7, d)? as u64),
        acknowledged: get::<i64>(&row, 10, d)? as u64,
        id,
    }))
}

fn facts(tx: &mut impl GenericClient, id: &str) -> Result<DeviceFacts, StoreError> {
    let record =
        device_record(tx, id)?.ok_or_else(|| StoreError::NoSuchDevice { id: id.into() })?;
    let doing = "reading a device's rollbacks";
    let mut rolled_back_from = BTreeSet::new();
    for row in tx
        .query(
            "SELECT version FROM device_rollbacks WHERE device_id = $1",
            &[&id],
        )
        .map_err(StoreError::pg(doing))?
    {
        let v: String = get(&row, 0, doing)?;
        rolled_back_from.insert(parse_version("a rollback", &v)?);
    }
    Ok(DeviceFacts {
        seed: WaveSeed::of(&record.id),
        id: record.id,
        board: record.board,
        channel: record.channel,
        labels: record.labels,
        version: record.version,
        pin: record.pin,
        rolled_back_from,
    })
}

pub(super) fn read_timeline(
    tx: &mut Transaction<'_>,
    id: &str,
) -> Result<Vec<TimelineEntry>, StoreError> {
    let doing = "reading a timeline";
    let rows = tx
        .query(
            "SELECT seq, at, kind, version, detail FROM timeline WHERE device_id = $1 ORDER BY seq",
            &[&id],
        )
        .map_err(StoreError::pg(doing))?;
    rows.iter()
        .map(|r| {
            Ok(TimelineEntry {
                seq: get::<i64>(r, 0, doing)? as u64,
                at: UnixTime(get::<i64>(r, 1, doing)? as u64),
                kind: get(r, 2, doing)?,
                version: get(r, 3, doing)?,
                detail: get(r, 4, doing)?,
            })
        })
        .collect()
}
