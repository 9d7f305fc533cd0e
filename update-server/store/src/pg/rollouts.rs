//! Rollouts in the PostgreSQL store: their rows and per-wave stats, the operator's
//! changes to them, pins and maintenance windows.

use postgres::error::SqlState;
use postgres::types::ToSql;
use postgres::{GenericClient, Row, Transaction};
use skerry_rollout::{
    MaintenanceWindow, PauseReason, Pin, Rollout, RolloutState, UnixTime, WaveStats, Weekdays,
};

use super::check_in::append_timeline;
use super::get;
use crate::model::RolloutAction;
use crate::sqlite::{damaged, labels_from, labels_to};
use crate::sqlite_rollouts::{
    count_outcome, reason_to, rollout_from, waves_to, RolloutRow, ROLLOUT_COLUMNS,
};
use crate::{RolloutWithStats, StoreError};

fn rollout_row(row: &Row) -> Result<RolloutRow, StoreError> {
    let d = "reading rollouts";
    Ok((
        get(row, 0, d)?,
        get(row, 1, d)?,
        get(row, 2, d)?,
        get(row, 3, d)?,
        get(row, 4, d)?,
        get(row, 5, d)?,
        get(row, 6, d)?,
        get(row, 7, d)?,
        get(row, 8, d)?,
        get(row, 9, d)?,
        get(row, 10, d)?,
        get(row, 11, d)?,
    ))
}

/// Rollouts matching `filter`, without their stats.
pub(super) fn load_rollouts_only(
    tx: &mut impl GenericClient,
    filter: &str,
    args: &[&(dyn ToSql + Sync)],
) -> Result<Vec<Rollout>, StoreError> {
    let doing = "reading rollouts";
    let rows = tx
        .query(
            &format!("SELECT {ROLLOUT_COLUMNS} FROM rollouts {filter} ORDER BY id"),
            args,
        )
        .map_err(StoreError::pg(doing))?;
    rows.iter().map(|r| rollout_from(rollout_row(r)?)).collect()
}

pub(super) fn load_rollouts(
    tx: &mut impl GenericClient,
    filter: &str,
    args: &[&(dyn ToSql + Sync)],
) -> Result<Vec<RolloutWithStats>, StoreError> {
    let rollouts = load_rollouts_only(tx, filter, args)?;
    let doing = "counting a rollout's outcomes";
    let mut out = Vec::with_capacity(rollouts.len());
    for rollout in rollouts {
        let mut stats = vec![WaveStats::default(); rollout.waves.waves().len()];
        for row in tx
            .query(
                "SELECT wave, outcome, COUNT(*) FROM rollout_devices
                 WHERE rollout_id = $1 AND wave IS NOT NULL GROUP BY wave, outcome",
                &[&rollout.id],
            )
            .map_err(StoreError::pg(doing))?
        {
            let outcome: String = get(&row, 1, doing)?;
            count_outcome(
                &mut stats,
                get(&row, 0, doing)?,
                &outcome,
                get(&row, 2, doing)?,
            );
        }
        out.push(RolloutWithStats { rollout, stats });
    }
    Ok(out)
}

pub(super) fn record_offer(
    tx: &mut Transaction<'_>,
    rollout_id: &str,
    device: &str,
    wave: Option<usize>,
    now: UnixTime,
) -> Result<(), StoreError> {
    let doing = "recording an offer";
    let inserted = tx
        .execute(
            "INSERT INTO rollout_devices (rollout_id, device_id, wave, outcome, updated_at)
                     VALUES ($1, $2, $3, 'offered', $4) ON CONFLICT DO NOTHING",
            &[
                &rollout_id,
                &device,
                &wave.map(|w| w as i64),
                &(now.0 as i64),
            ],
        )
        .map_err(StoreError::pg(doing))?;
    if inserted > 0 {
        // Check-ins run at REPEATABLE READ and meet on the device's row (see the
        // module note in `pg/mod.rs`): writing it here too makes an offer and a
        // check-in of one device that overlap fail one of them with a serialization
        // error (retried), instead of both appending the same timeline sequence.
        tx.execute("UPDATE devices SET id = id WHERE id = $1", &[&device])
            .map_err(StoreError::pg(doing))?;
        let version: String = tx
            .query_one("SELECT version FROM rollouts WHERE id = $1", &[&rollout_id])
            .map_err(StoreError::pg(doing))?
            .get(0);
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

pub(super) fn pause_if_active(
    tx: &mut Transaction<'_>,
    rollout_id: &str,
    reason: &PauseReason,
    now: UnixTime,
) -> Result<(), StoreError> {
    let doing = "pausing a rollout";
    tx.execute(
        "UPDATE rollouts SET state = 'paused', paused_since = $2, pause_reason = $3
                 WHERE id = $1 AND state = 'active'",
        &[&rollout_id, &(now.0 as i64), &reason_to(reason)],
    )
    .map_err(StoreError::pg(doing))?;
    Ok(())
}

pub(super) fn create_rollout(tx: &mut Transaction<'_>, r: &Rollout) -> Result<(), StoreError> {
    let doing = "creating a rollout";
    let (state, since, reason) = match &r.state {
        RolloutState::Active => ("active", None, None),
        RolloutState::Aborted => ("aborted", None, None),
        RolloutState::Paused { since, reason } => {
            ("paused", Some(since.0 as i64), Some(reason_to(reason)))
        }
    };
    let result = tx.execute(
        &format!("INSERT INTO rollouts ({ROLLOUT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"),
        &[
            &r.id,
            &r.release.board,
            &r.release.version.to_string(),
            &r.release.channel,
            &(r.started_at.0 as i64),
            &waves_to(&r.waves),
            &i64::from(r.gate.max_bad_permille),
            &i64::from(r.gate.min_sample),
            &r.force,
            &state,
            &since,
            &reason,
        ],
    );
    match result {
        Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => Err(StoreError::RolloutExists {
            id: r.id.clone(),
            release: format!(
                "{} {} ({})",
                r.release.board, r.release.version, r.release.channel
            ),
        }),
        other => other.map(|_| ()).map_err(StoreError::pg(doing)),
    }
}

pub(super) fn act_on_rollout(
    tx: &mut Transaction<'_>,
    id: &str,
    action: &RolloutAction,
    now: UnixTime,
) -> Result<(), StoreError> {
    let doing = "changing a rollout";
    let mut found = load_rollouts_only(tx, "WHERE id = $1", &[&id])?;
    let Some(rollout) = found.pop() else {
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
    match action {
        RolloutAction::Pause { note } => {
            if rollout.state != RolloutState::Active {
                return Err(refuse("pause it"));
            }
            let reason = PauseReason::Operator { note: note.clone() };
            tx.execute(
                "UPDATE rollouts SET state = 'paused', paused_since = $2, pause_reason = $3 WHERE id = $1",
                &[&id, &(now.0 as i64), &reason_to(&reason)],
            )
            .map_err(StoreError::pg(doing))?;
        }
        RolloutAction::Resume => {
            let Some((_, started)) = rollout.resumed(now) else {
                return Err(refuse("resume it"));
            };
            tx.execute(
                "UPDATE rollouts SET state = 'active', started_at = $2, paused_since = NULL,
                             pause_reason = NULL WHERE id = $1",
                &[&id, &(started.0 as i64)],
            )
            .map_err(StoreError::pg(doing))?;
        }
        RolloutAction::Abort => {
            if rollout.state == RolloutState::Aborted {
                return Err(refuse("abort it"));
            }
            tx.execute(
                "UPDATE rollouts SET state = 'aborted' WHERE id = $1",
                &[&id],
            )
            .map_err(StoreError::pg(doing))?;
        }
    }
    Ok(())
}

pub(super) fn set_pin(
    tx: &mut Transaction<'_>,
    device: &str,
    pin: Option<&Pin>,
) -> Result<(), StoreError> {
    let doing = "pinning a device";
    let changed = tx
        .execute(
            "UPDATE devices SET pin_version = $2, pin_force = $3 WHERE id = $1",
            &[
                &device,
                &pin.map(|p| p.version.to_string()),
                &pin.is_some_and(|p| p.force),
            ],
        )
        .map_err(StoreError::pg(doing))?;
    if changed == 0 {
        return Err(StoreError::NoSuchDevice { id: device.into() });
    }
    Ok(())
}

pub(super) fn add_window(
    tx: &mut Transaction<'_>,
    w: &MaintenanceWindow,
) -> Result<(), StoreError> {
    let doing = "adding a maintenance window";
    tx.execute(
        "INSERT INTO maintenance_windows (selector, days, start_minute, length_minutes) VALUES ($1, $2, $3, $4)",
        &[
            &labels_to(&w.group),
            &i64::from(w.days.bits()),
            &i64::from(w.start_minute),
            &i64::from(w.length_minutes),
        ],
    )
    .map_err(StoreError::pg(doing))?;
    Ok(())
}

pub(super) fn read_windows(tx: &mut Transaction<'_>) -> Result<Vec<MaintenanceWindow>, StoreError> {
    let doing = "reading maintenance windows";
    let rows = tx
        .query("SELECT selector, days, start_minute, length_minutes FROM maintenance_windows ORDER BY id", &[])
        .map_err(StoreError::pg(doing))?;
    let what = "a maintenance window";
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let selector: String = get(&row, 0, doing)?;
        let small = |i| -> Result<u16, StoreError> {
            u16::try_from(get::<i64>(&row, i, doing)?).map_err(|e| damaged(what, e))
        };
        let days = u8::try_from(small(1)?).map_err(|e| damaged(what, e))?;
        let days = Weekdays::from_bits(days).map_err(|e| damaged(what, e))?;
        out.push(
            MaintenanceWindow::new(labels_from(what, &selector)?, days, small(2)?, small(3)?)
                .map_err(|e| damaged(what, e))?,
        );
    }
    Ok(out)
}
