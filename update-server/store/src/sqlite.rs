//! The embedded store: one SQLite file (WAL journal, full sync, so a report is durable
//! once its check-in is answered), migrated at open.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use rusqlite::{params, Connection, OptionalExtension, Transaction};
use semver::Version;
use serde_json::{json, Value};
use skerry_rollout::{
    DeviceFacts, HealthGate, MaintenanceWindow, PauseReason, Pin, Release, Rollout, RolloutState,
    UnixTime, Wave, WaveSchedule, WaveSeed, WaveStats, Weekdays,
};

use crate::lease::{may_take, Lease, LeaseStore};
use crate::migrations::{latest, MIGRATIONS};
use crate::model::*;
use crate::sqlite_cached::Cached;
use crate::{CheckInRecord, DecisionInputs, FleetStore, RolloutWithStats, StoreError};

/// The SQLite store.
#[derive(Debug)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
    path: PathBuf,
    /// The thread that writes check-ins in groups.
    writer: crate::group_commit::Writer,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and migrates it to the latest
    /// schema.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let open_err = |source| StoreError::Open {
            path: path.into(),
            source,
        };
        let mut conn = Connection::open(path).map_err(open_err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(open_err)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(open_err)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(open_err)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(open_err)?;
        conn.set_prepared_statement_cache_capacity(crate::sqlite_cached::STATEMENT_CACHE);
        migrate(&mut conn, path)?;
        let conn = Arc::new(Mutex::new(conn));
        let writer = crate::group_commit::Writer::start(Arc::clone(&conn)).map_err(|e| {
            StoreError::Damaged {
                what: format!("the check-in writer for {}", path.display()),
                reason: format!("its thread did not start: {e}"),
            }
        })?;
        Ok(Self {
            conn,
            path: path.into(),
            writer,
        })
    }

    /// The schema version of the open database.
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        self.lock()
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(StoreError::sql("reading the schema version"))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock left no transaction open (rusqlite rolls back
        // on drop), so the connection is still sound.
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn write<T>(
        &self,
        doing: &'static str,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.lock();
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(StoreError::sql(doing))?;
        let out = f(&tx)?;
        tx.commit().map_err(StoreError::sql(doing))?;
        Ok(out)
    }
}

fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let found: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(|source| StoreError::Open {
            path: path.into(),
            source,
        })?;
    if found > latest() {
        return Err(StoreError::NewerSchema {
            path: path.into(),
            found,
            known: latest(),
        });
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(found.max(0) as usize) {
        let version = index as i64 + 1;
        let err = |source| StoreError::Migrate {
            path: path.into(),
            version,
            source,
        };
        let tx = conn.transaction().map_err(err)?;
        tx.execute_batch(sql).map_err(err)?;
        tx.pragma_update(None, "user_version", version)
            .map_err(err)?;
        tx.commit().map_err(err)?;
    }
    Ok(())
}

pub(crate) fn damaged(what: impl Into<String>, reason: impl ToString) -> StoreError {
    StoreError::Damaged {
        what: what.into(),
        reason: reason.to_string(),
    }
}

pub(crate) fn parse_version(what: &str, s: &str) -> Result<Version, StoreError> {
    Version::parse(s).map_err(|e| damaged(what, e))
}

fn append_timeline(
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

pub(crate) fn health_text(h: &HealthReport) -> String {
    let state = match h.state {
        HealthState::Healthy => "healthy",
        HealthState::Degraded => "degraded",
        HealthState::Unhealthy => "unhealthy",
    };
    if h.failing.is_empty() {
        state.into()
    } else {
        format!("{state}: {}", h.failing.join(", "))
    }
}

pub(crate) fn slots_json(slots: &[SlotReport]) -> String {
    let list: Vec<Value> = slots
        .iter()
        .map(|s| {
            json!({
                "name": s.name,
                "version": s.version.as_ref().map(|v| v.to_string()),
                "status": format!("{:?}", s.status).to_lowercase(),
                "booted": s.booted,
            })
        })
        .collect();
    Value::Array(list).to_string()
}

pub(crate) fn labels_from(what: &str, text: &str) -> Result<BTreeMap<String, String>, StoreError> {
    serde_json::from_str(text).map_err(|e| damaged(what, e))
}

pub(crate) fn labels_to(labels: &BTreeMap<String, String>) -> String {
    json!(labels).to_string()
}

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

fn load_rollouts(
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

fn device_record(conn: &Connection, id: &str) -> Result<Option<DeviceRecord>, StoreError> {
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

impl FleetStore for SqliteStore {
    fn check_in(&self, c: &CheckIn, now: UnixTime) -> Result<CheckInRecord, StoreError> {
        self.writer.check_in(c, now)
    }

    fn check_in_async(self: Arc<Self>, c: CheckIn, now: UnixTime) -> crate::CheckInFuture {
        Box::pin(self.writer.submit(c, now))
    }

    fn rollouts_for(
        &self,
        board: &str,
        channel: &str,
    ) -> Result<Vec<RolloutWithStats>, StoreError> {
        load_rollouts(
            &self.lock(),
            "WHERE board = ?1 AND channel = ?2",
            &[&board, &channel],
        )
    }

    fn rollouts(&self) -> Result<Vec<RolloutWithStats>, StoreError> {
        load_rollouts(&self.lock(), "", &[])
    }

    fn record_offer(
        &self,
        rollout_id: &str,
        device: &str,
        wave: Option<usize>,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        self.write("recording an offer", |tx| {
            let inserted = tx
                .execute_cached(
                    "INSERT OR IGNORE INTO rollout_devices (rollout_id, device_id, wave, outcome, updated_at)
                     VALUES (?1, ?2, ?3, 'offered', ?4)",
                    params![rollout_id, device, wave.map(|w| w as i64), now.0 as i64],
                )
                .map_err(StoreError::sql("recording an offer"))?;
            if inserted > 0 {
                let version: String = tx
                    .query_row_cached("SELECT version FROM rollouts WHERE id = ?1", [rollout_id], |r| r.get(0))
                    .map_err(StoreError::sql("recording an offer"))?;
                append_timeline(tx, device, now, "offered", &version, &format!("rollout {rollout_id}"))?;
            }
            Ok(())
        })
    }

    fn pause_if_active(
        &self,
        rollout_id: &str,
        reason: &PauseReason,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        self.write("pausing a rollout", |tx| {
            tx.execute_cached(
                "UPDATE rollouts SET state = 'paused', paused_since = ?2, pause_reason = ?3
                 WHERE id = ?1 AND state = 'active'",
                params![rollout_id, now.0 as i64, reason_to(reason)],
            )
            .map_err(StoreError::sql("pausing a rollout"))?;
            Ok(())
        })
    }

    fn create_rollout(&self, r: &Rollout) -> Result<(), StoreError> {
        self.write("creating a rollout", |tx| {
            let (state, since, reason) = match &r.state {
                RolloutState::Active => ("active", None, None),
                RolloutState::Aborted => ("aborted", None, None),
                RolloutState::Paused { since, reason } => ("paused", Some(since.0 as i64), Some(reason_to(reason))),
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
                Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == rusqlite::ErrorCode::ConstraintViolation => {
                    Err(StoreError::RolloutExists {
                        id: r.id.clone(),
                        release: format!("{} {} ({})", r.release.board, r.release.version, r.release.channel),
                    })
                }
                other => other.map(|_| ()).map_err(StoreError::sql("creating a rollout")),
            }
        })
    }

    fn act_on_rollout(
        &self,
        id: &str,
        action: &RolloutAction,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        self.write("changing a rollout", |tx| {
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
        })
    }

    fn set_pin(&self, device: &str, pin: Option<&Pin>) -> Result<(), StoreError> {
        self.write("pinning a device", |tx| {
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
        })
    }

    fn add_window(&self, w: &MaintenanceWindow) -> Result<(), StoreError> {
        self.write("adding a maintenance window", |tx| {
            tx.execute_cached(
                "INSERT INTO maintenance_windows (selector, days, start_minute, length_minutes) VALUES (?1, ?2, ?3, ?4)",
                params![labels_to(&w.group), w.days.bits(), w.start_minute, w.length_minutes],
            )
            .map_err(StoreError::sql("adding a maintenance window"))?;
            Ok(())
        })
    }

    fn windows(&self) -> Result<Vec<MaintenanceWindow>, StoreError> {
        read_windows(&self.lock())
    }

    fn device(&self, id: &str) -> Result<Option<DeviceRecord>, StoreError> {
        device_record(&self.lock(), id)
    }

    fn timeline(&self, id: &str) -> Result<Vec<TimelineEntry>, StoreError> {
        let conn = self.lock();
        let doing = "reading a timeline";
        let mut stmt = conn
            .prepare_cached("SELECT seq, at, kind, version, detail FROM timeline WHERE device_id = ?1 ORDER BY seq")
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
}

impl LeaseStore for SqliteStore {
    fn take_lease(
        &self,
        name: &str,
        holder: &str,
        now: UnixTime,
        length: std::time::Duration,
    ) -> Result<Option<Lease>, StoreError> {
        let doing = "taking a lease";
        self.write(doing, |tx| {
            let row: Option<(String, i64, i64)> = tx
                .query_row_cached(
                    "SELECT holder, expires_at, generation FROM leases WHERE name = ?1",
                    [name],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()
                .map_err(StoreError::sql(doing))?;
            let generation = match row {
                None => 1,
                Some((h, expires, g)) if may_take(&h, expires as u64, holder, now) => {
                    if h == holder {
                        g
                    } else {
                        g + 1
                    }
                }
                Some(_) => return Ok(None),
            };
            let expires = now.0 + length.as_secs();
            tx.execute_cached(
                "INSERT INTO leases (name, holder, expires_at, generation) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (name) DO UPDATE SET holder = ?2, expires_at = ?3, generation = ?4",
                params![name, holder, expires as i64, generation],
            )
            .map_err(StoreError::sql(doing))?;
            Ok(Some(Lease {
                generation: generation as u64,
                expires: UnixTime(expires),
            }))
        })
    }

    fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        let doing = "releasing a lease";
        self.write(doing, |tx| {
            tx.execute_cached(
                "UPDATE leases SET expires_at = 0 WHERE name = ?1 AND holder = ?2",
                params![name, holder],
            )
            .map_err(StoreError::sql(doing))?;
            Ok(())
        })
    }
}

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
        if let Err(refusal) = c.admission.admits(identity.as_ref()) {
            return Err(StoreError::NotAdmitted {
                device: c.device.clone(),
                refusal,
            });
        }
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

fn read_windows(conn: &Connection) -> Result<Vec<MaintenanceWindow>, StoreError> {
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
