//! Rollouts in the SQLite store: their rows (the text forms the PostgreSQL store
//! shares), their per-wave stats, the operator's changes to them, and the other inputs
//! of the rollout decision: pins and maintenance windows.

use rusqlite::{params, Connection, Transaction};
use serde_json::{json, Value};
use skerry_rollout::{
    HealthGate, MaintenanceWindow, PauseReason, Pin, Release, Rollout, RolloutState, UnixTime,
    Wave, WaveSchedule, WaveStats, Weekdays,
};

use crate::model::RolloutAction;
use crate::sqlite::{damaged, labels_from, labels_to, parse_version};
use crate::sqlite_cached::Cached;
use crate::sqlite_check_in::append_timeline;
use crate::{DecisionInputs, RolloutWithStats, StoreError};

pub(crate) fn reason_to(reason: &PauseReason) -> String {
    match reason {
        PauseReason::Operator { note } => json!({"kind": "operator", "note": note}),
        PauseReason::Health {
            wave,
            started,
            bad,
            max_bad_permille,
        } => json!({"kind": "health", "wave": wave, "started": started, "bad": bad,
                    "max_bad_permille": max_bad_permille}),
    }
    .to_string()
}

pub(crate) fn reason_from(text: &str) -> Result<PauseReason, StoreError> {
    let v: Value = serde_json::from_str(text).map_err(|e| damaged("a pause reason", e))?;
    let num = |k: &str| {
        v.get(k)
            .and_then(Value::as_u64)
            .ok_or_else(|| damaged("a pause reason", format!("no {k}")))
    };
    match v.get("kind").and_then(Value::as_str) {
        Some("operator") => Ok(PauseReason::Operator {
            note: v.get("note").and_then(Value::as_str).unwrap_or("").into(),
        }),
        Some("health") => Ok(PauseReason::Health {
            wave: num("wave")? as usize,
            started: num("started")? as u32,
            bad: num("bad")? as u32,
            max_bad_permille: num("max_bad_permille")? as u16,
        }),
        other => Err(damaged("a pause reason", format!("kind {other:?}"))),
    }
}

pub(crate) fn waves_to(waves: &WaveSchedule) -> String {
    let list: Vec<[u64; 2]> = waves
        .waves()
        .iter()
        .map(|w| [w.after_secs, u64::from(w.basis_points)])
        .collect();
    json!(list).to_string()
}

pub(crate) fn waves_from(id: &str, text: &str) -> Result<WaveSchedule, StoreError> {
    let what = format!("the waves of rollout {id}");
    let list: Vec<(u64, u16)> = serde_json::from_str(text).map_err(|e| damaged(&what, e))?;
    WaveSchedule::new(
        list.into_iter()
            .map(|(after_secs, basis_points)| Wave {
                after_secs,
                basis_points,
            })
            .collect(),
    )
    .map_err(|e| damaged(&what, e))
}

pub(crate) const ROLLOUT_COLUMNS: &str =
    "id, board, version, channel, started_at, waves, max_bad_permille, \
     min_sample, force, state, paused_since, pause_reason";

pub(crate) type RolloutRow = (
    String,
    String,
    String,
    String,
    i64,
    String,
    i64,
    i64,
    bool,
    String,
    Option<i64>,
    Option<String>,
);

fn rollout_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RolloutRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
        r.get(8)?,
        r.get(9)?,
        r.get(10)?,
        r.get(11)?,
    ))
}

pub(crate) fn rollout_from(row: RolloutRow) -> Result<Rollout, StoreError> {
    let (
        id,
        board,
        version,
        channel,
        started,
        waves,
        permille,
        min_sample,
        force,
        state,
        since,
        reason,
    ) = row;
    let state = match state.as_str() {
        "active" => RolloutState::Active,
        "aborted" => RolloutState::Aborted,
        "paused" => RolloutState::Paused {
            since: UnixTime(since.unwrap_or(0) as u64),
            reason: reason_from(reason.as_deref().unwrap_or(""))?,
        },
        other => return Err(damaged(format!("rollout {id}"), format!("state {other:?}"))),
    };
    Ok(Rollout {
        release: Release {
            board,
            version: parse_version(&format!("rollout {id}"), &version)?,
            channel,
        },
        started_at: UnixTime(started as u64),
        waves: waves_from(&id, &waves)?,
        gate: HealthGate {
            max_bad_permille: permille as u16,
            min_sample: min_sample as u32,
        },
        state,
        force,
        id,
    })
}

pub(crate) fn load_rollouts(
    conn: &Connection,
    filter: &str,
    args: &[&dyn rusqlite::ToSql],
) -> Result<Vec<RolloutWithStats>, StoreError> {
    let doing = "reading rollouts";
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {ROLLOUT_COLUMNS} FROM rollouts {filter} ORDER BY id"
        ))
        .map_err(StoreError::sql(doing))?;
    let rows: Vec<RolloutRow> = stmt
        .query_map(args, rollout_row)
        .map_err(StoreError::sql(doing))?
        .collect::<Result<_, _>>()
        .map_err(StoreError::sql(doing))?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let rollout = rollout_from(row)?;
        let stats = wave_stats(conn, &rollout)?;
        out.push(RolloutWithStats { rollout, stats });
    }
    Ok(out)
}

fn wave_stats(conn: &Connection, rollout: &Rollout) -> Result<Vec<WaveStats>, StoreError> {
    let doing = "counting a rollout's outcomes";
    let mut stats = vec![WaveStats::default(); rollout.waves.waves().len()];
    let mut stmt = conn
        .prepare_cached(
            "SELECT wave, outcome, COUNT(*) FROM rollout_devices
             WHERE rollout_id = ?1 AND wave IS NOT NULL GROUP BY wave, outcome",
        )
        .map_err(StoreError::sql(doing))?;
    let rows = stmt
        .query_map([&rollout.id], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })
        .map_err(StoreError::sql(doing))?;
    for row in rows {
        let (wave, outcome, count) = row.map_err(StoreError::sql(doing))?;
        count_outcome(&mut stats, wave, &outcome, count);
    }
    Ok(stats)
}

/// Adds `count` devices of `wave` whose outcome is `outcome` to the stats.
pub(crate) fn count_outcome(stats: &mut [WaveStats], wave: i64, outcome: &str, count: i64) {
    let Some(s) = usize::try_from(wave).ok().and_then(|w| stats.get_mut(w)) else {
        return;
    };
    let count = count as u32;
    if outcome != "offered" {
        s.started += count;
    }
    match outcome {
        "committed" => s.committed += count,
        "failed" => s.failed += count,
        "rolled_back" => s.rolled_back += count,
        _ => {}
    }
}

/// What the rollout decision reads for a check-in of `board` and `channel`.
pub(crate) fn decision_reads(
    conn: &Connection,
    board: &str,
    channel: &str,
) -> Result<DecisionInputs, StoreError> {
    Ok(DecisionInputs {
        rollouts: load_rollouts(
            conn,
            "WHERE board = ?1 AND channel = ?2",
            &[&board, &channel],
        )?,
        windows: read_windows(conn)?,
    })
}

pub(crate) fn read_windows(conn: &Connection) -> Result<Vec<MaintenanceWindow>, StoreError> {
    let doing = "reading maintenance windows";
    let mut stmt = conn
        .prepare_cached("SELECT selector, days, start_minute, length_minutes FROM maintenance_windows ORDER BY id")
        .map_err(StoreError::sql(doing))?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, u8>(1)?,
                r.get::<_, u16>(2)?,
                r.get::<_, u16>(3)?,
            ))
        })
        .map_err(StoreError::sql(doing))?;
    let mut out = Vec::new();
    for row in rows {
        let (selector, days, start, length) = row.map_err(StoreError::sql(doing))?;
        let what = "a maintenance window";
        let days = Weekdays::from_bits(days).map_err(|e| damaged(what, e))?;
        out.push(
            MaintenanceWindow::new(labels_from(what, &selector)?, days, start, length)
                .map_err(|e| damaged(what, e))?,
        );
    }
    Ok(out)
}

pub(crate) fn record_offer(
    tx: &Transaction<'_>,
    rollout_id: &str,
    device: &str,
    wave: Option<usize>,
    now: UnixTime,
) -> Result<(), StoreError> {
    let inserted = tx
        .execute_cached(
            "INSERT OR IGNORE INTO rollout_devices (rollout_id, device_id, wave, outcome, updated_at)
                     VALUES (?1, ?2, ?3, 'offered', ?4)",
            params![rollout_id, device, wave.map(|w| w as i64), now.0 as i64],
        )
        .map_err(StoreError::sql("recording an offer"))?;
    if inserted > 0 {
        let version: String = tx
            .query_row_cached(
                "SELECT version FROM rollouts WHERE id = ?1",
                [rollout_id],
                |r| r.get(0),
            )
            .map_err(StoreError::sql("recording an offer"))?;
        append_timeline(
            tx,
            device,
            now,
            "offered",
            &version,
            &format!("rollout {rollout_id}"),
        )?;
    }
    Ok(())
}

pub(crate) fn pause_if_active(
    tx: &Transaction<'_>,
    rollout_id: &str,
    reason: &PauseReason,
    now: UnixTime,
) -> Result<(), StoreError> {
    tx.execute_cached(
        "UPDATE rollouts SET state = 'paused', paused_since = ?2, pause_reason = ?3
                 WHERE id = ?1 AND state = 'active'",
        params![rollout_id, now.0 as i64, reason_to(reason)],
    )
    .map_err(StoreError::sql("pausing a rollout"))?;
    Ok(())
}

pub(crate) fn create_rollout(tx: &Transaction<'_>, r: &Rollout) -> Result<(), StoreError> {
    let (state, since, reason) = match &r.state {
        RolloutState::Active => ("active", None, None),
        RolloutState::Aborted => ("aborted", None, None),
        RolloutState::Paused { since, reason } => {
            ("paused", Some(since.0 as i64), Some(reason_to(reason)))
        }
    };
    let result = tx.execute_cached(
        &format!("INSERT INTO rollouts ({ROLLOUT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"),
        params![
            r.id,
            r.release.board,
            r.release.version.to_string(),
            r.release.channel,
            r.started_at.0 as i64,
            waves_to(&r.waves),
            i64::from(r.gate.max_bad_permille),
            i64::from(r.gate.min_sample),
            r.force,
            state,
            since,
            reason
        ],
    );
    match result {
        Err(rusqlite::Error::SqliteFailure(e, _))
            if e.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            Err(StoreError::RolloutExists {
                id: r.id.clone(),
                release: format!(
                    "{} {} ({})",
                    r.release.board, r.release.version, r.release.channel
                ),
            })
        }
        other => other
            .map(|_| ())
            .map_err(StoreError::sql("creating a rollout")),
    }
}

pub(crate) fn act_on_rollout(
    tx: &Transaction<'_>,
    id: &str,
    action: &RolloutAction,
    now: UnixTime,
) -> Result<(), StoreError> {
    let mut found = load_rollouts(tx, "WHERE id = ?1", &[&id])?;
    let Some(RolloutWithStats { rollout, .. }) = found.pop() else {
        return Err(StoreError::NoSuchRollout { id: id.into() });
    };
    let state_name = match rollout.state {
        RolloutState::Active => "active",
        RolloutState::Paused { .. } => "paused",
        RolloutState::Aborted => "aborted",
    };
    let refuse = |action| StoreError::BadTransition {
        id: id.into(),
        state: state_name,
        action,
    };
    let doing = "changing a rollout";
    match action {
        RolloutAction::Pause { note } => {
            if rollout.state != RolloutState::Active {
                return Err(refuse("pause it"));
            }
            let reason = PauseReason::Operator { note: note.clone() };
            tx.execute_cached(
                "UPDATE rollouts SET state = 'paused', paused_since = ?2, pause_reason = ?3 WHERE id = ?1",
                params![id, now.0 as i64, reason_to(&reason)],
            )
            .map_err(StoreError::sql(doing))?;
        }
        RolloutAction::Resume => {
            let Some((_, started)) = rollout.resumed(now) else {
                return Err(refuse("resume it"));
            };
            tx.execute_cached(
                "UPDATE rollouts SET state = 'active', started_at = ?2, paused_since = NULL,
                             pause_reason = NULL WHERE id = ?1",
                params![id, started.0 as i64],
            )
            .map_err(StoreError::sql(doing))?;
        }
        RolloutAction::Abort => {
            if rollout.state == RolloutState::Aborted {
                return Err(refuse("abort it"));
            }
            tx.execute_cached("UPDATE rollouts SET state = 'aborted' WHERE id = ?1", [id])
                .map_err(StoreError::sql(doing))?;
        }
    }
    Ok(())
}

pub(crate) fn set_pin(
    tx: &Transaction<'_>,
    device: &str,
    pin: Option<&Pin>,
) -> Result<(), StoreError> {
    let changed = tx
        .execute_cached(
            "UPDATE devices SET pin_version = ?2, pin_force = ?3 WHERE id = ?1",
            params![
                device,
                pin.map(|p| p.version.to_string()),
                pin.is_some_and(|p| p.force)
            ],
        )
        .map_err(StoreError::sql("pinning a device"))?;
    if changed == 0 {
        return Err(StoreError::NoSuchDevice { id: device.into() });
    }
    Ok(())
}

pub(crate) fn add_window(tx: &Transaction<'_>, w: &MaintenanceWindow) -> Result<(), StoreError> {
    tx.execute_cached(
        "INSERT INTO maintenance_windows (selector, days, start_minute, length_minutes) VALUES (?1, ?2, ?3, ?4)",
        params![labels_to(&w.group), w.days.bits(), w.start_minute, w.length_minutes],
    )
    .map_err(StoreError::sql("adding a maintenance window"))?;
    Ok(())
}
