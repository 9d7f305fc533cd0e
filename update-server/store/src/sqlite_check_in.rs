//! The check-in's transaction in the SQLite store: the device's row, its bounded
//! timeline, its rollbacks and its rollout outcomes, and the reads of them.

use std::collections::BTreeSet;

use rusqlite::{params, Connection, OptionalExtension, Transaction};
use skerry_rollout::{DeviceFacts, Pin, UnixTime, WaveSeed};

use crate::model::*;
use crate::sqlite::{health_text, labels_from, labels_to, parse_version, slots_json};
use crate::sqlite_cached::Cached;
use crate::sqlite_rollouts::load_rollouts;
use crate::{CheckInRecord, RolloutWithStats, StoreError};

/// One check-in inside a transaction (see [`crate::group_commit`]): creates or updates
/// the device, applies the reports above the acknowledged sequence once each, appends
/// the timeline, remembers rollbacks.
pub(crate) fn check_in_tx(
    tx: &Transaction<'_>,
    c: &CheckIn,
    now: UnixTime,
) -> Result<CheckInRecord, StoreError> {
    let doing = "recording a check-in";
    // Before any write: a refused check-in leaves the transaction as it was.
    if c.admission != Admission::Open {
        let identity = crate::sqlite_enrollment::identity_row(tx, &c.device)?;
        c.admission.check(&c.device, identity.as_ref())?;
    }
    let before = device_record(tx, &c.device)?;
    tx.execute_cached(
            "INSERT INTO devices (id, board, version, channel, labels, health, slots, first_seen, last_seen)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)
             ON CONFLICT (id) DO UPDATE SET board = ?2, version = ?3, channel = ?4, labels = ?5,
                 health = ?6, slots = ?7, last_seen = ?8",
            params![
                c.device,
                c.board,
                c.version.to_string(),
                c.channel,
                labels_to(&c.labels),
                health_text(&c.health),
                slots_json(&c.slots),
                now.0 as i64
            ],
        )
        .map_err(StoreError::sql(doing))?;
    let health = health_text(&c.health);
    match &before {
        None => append_timeline(
            tx,
            &c.device,
            now,
            "enrolled",
            &c.version.to_string(),
            &health,
        )?,
        Some(b) if b.version != c.version => append_timeline(
            tx,
            &c.device,
            now,
            "running",
            &c.version.to_string(),
            &health,
        )?,
        Some(b) if b.health != health => append_timeline(
            tx,
            &c.device,
            now,
            "health",
            &c.version.to_string(),
            &health,
        )?,
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
    tx.execute_cached(
        "UPDATE devices SET acknowledged = ?2 WHERE id = ?1",
        params![c.device, acked as i64],
    )
    .map_err(StoreError::sql(doing))?;
    Ok(CheckInRecord {
        facts: facts(tx, &c.device)?,
        acknowledged: acked,
        inputs: None,
    })
}

fn apply_report(
    tx: &Transaction<'_>,
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
        tx.execute_cached(
            "INSERT OR IGNORE INTO device_rollbacks (device_id, version, at) VALUES (?1, ?2, ?3)",
            params![c.device, target, now.0 as i64],
        )
        .map_err(StoreError::sql(doing))?;
    }
    let rollout = load_rollouts(
        tx,
        "WHERE board = ?1 AND version = ?2 AND channel = ?3",
        &[&c.board, &target, &c.channel],
    )?;
    let Some(RolloutWithStats { rollout, .. }) = rollout.into_iter().next() else {
        return Ok(());
    };
    let wave = rollout
        .waves
        .wave_of(WaveSeed::of(&c.device))
        .map(|w| w as i64);
    tx.execute_cached(
        "INSERT INTO rollout_devices (rollout_id, device_id, wave, outcome, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (rollout_id, device_id) DO UPDATE SET outcome = ?4, updated_at = ?5",
        params![
            rollout.id,
            c.device,
            wave,
            report.step.outcome(),
            now.0 as i64
        ],
    )
    .map_err(StoreError::sql(doing))?;
    Ok(())
}

pub(crate) fn append_timeline(
    tx: &Transaction<'_>,
    device: &str,
    at: UnixTime,
    kind: &str,
    version: &str,
    detail: &str,
) -> Result<(), StoreError> {
    let doing = "appending to a timeline";
    let next: i64 = tx
        .query_row_cached(
            "SELECT COALESCE(MAX(seq), 0) + 1 FROM timeline WHERE device_id = ?1",
            [device],
            |r| r.get(0),
        )
        .map_err(StoreError::sql(doing))?;
    tx.execute_cached(
        "INSERT INTO timeline (device_id, seq, at, kind, version, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![device, next, at.0 as i64, kind, version, detail],
    )
    .map_err(StoreError::sql(doing))?;
    tx.execute_cached(
        "DELETE FROM timeline WHERE device_id = ?1 AND seq <= ?2",
        params![device, next - TIMELINE_LIMIT as i64],
    )
    .map_err(StoreError::sql(doing))?;
    Ok(())
}

fn facts(tx: &Transaction<'_>, id: &str) -> Result<DeviceFacts, StoreError> {
    let record =
        device_record(tx, id)?.ok_or_else(|| StoreError::NoSuchDevice { id: id.into() })?;
    let doing = "reading a device's rollbacks";
    let mut stmt = tx
        .prepare_cached("SELECT version FROM device_rollbacks WHERE device_id = ?1")
        .map_err(StoreError::sql(doing))?;
    let mut rolled_back_from = BTreeSet::new();
    for v in stmt
        .query_map([id], |r| r.get::<_, String>(0))
        .map_err(StoreError::sql(doing))?
    {
        rolled_back_from.insert(parse_version(
            "a rollback",
            &v.map_err(StoreError::sql(doing))?,
        )?);
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

pub(crate) fn device_record(
    conn: &Connection,
    id: &str,
) -> Result<Option<DeviceRecord>, StoreError> {
    let doing = "reading a device";
    let row = conn
        .query_row_cached(
            "SELECT id, board, version, channel, labels, health, first_seen, last_seen,
                    pin_version, pin_force, acknowledged FROM devices WHERE id = ?1",
            [id],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, String>(5)?,
                    r.get::<_, i64>(6)?,
                    r.get::<_, i64>(7)?,
                    r.get::<_, Option<String>>(8)?,
                    r.get::<_, bool>(9)?,
                    r.get::<_, i64>(10)?,
                ))
            },
        )
        .optional()
        .map_err(StoreError::sql(doing))?;
    let Some((id, board, version, channel, labels, health, first, last, pin, force, acked)) = row
    else {
        return Ok(None);
    };
    let what = format!("device {id}");
    Ok(Some(DeviceRecord {
        version: parse_version(&what, &version)?,
        labels: labels_from(&what, &labels)?,
        pin: pin
            .map(|v| parse_version(&what, &v).map(|version| Pin { version, force }))
            .transpose()?,
        id,
        board,
        channel,
        health,
        first_seen: UnixTime(first as u64),
        last_seen: UnixTime(last as u64),
        acknowledged: acked as u64,
    }))
}

pub(crate) fn read_timeline(conn: &Connection, id: &str) -> Result<Vec<TimelineEntry>, StoreError> {
    let doing = "reading a timeline";
    let mut stmt = conn
        .prepare_cached(
            "SELECT seq, at, kind, version, detail FROM timeline WHERE device_id = ?1 ORDER BY seq",
        )
        .map_err(StoreError::sql(doing))?;
    let rows = stmt
        .query_map([id], |r| {
            Ok(TimelineEntry {
                seq: r.get::<_, i64>(0)? as u64,
                at: UnixTime(r.get::<_, i64>(1)? as u64),
                kind: r.get(2)?,
                version: r.get(3)?,
                detail: r.get(4)?,
            })
        })
        .map_err(StoreError::sql(doing))?;
    rows.collect::<Result<_, _>>()
        .map_err(StoreError::sql(doing))
}
