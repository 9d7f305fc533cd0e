//! The PostgreSQL store: several server instances on one database. Every write is one
//! SERIALIZABLE transaction, retried (bounded) when PostgreSQL reports a serialization
//! failure or deadlock, so rollout counts (computed from one row per rollout and
//! device) stay exact. A check-in is the exception: it writes only its own device's
//! rows, always including the device's own row, so REPEATABLE READ suffices: two
//! check-ins of one device on two instances meet on that row, and the later one fails
//! with a serialization error and is retried, so each report is stored once. (At
//! SERIALIZABLE, check-ins of different devices conflicted through predicate locks on
//! shared index pages, often enough under load to exhaust the retries.) Reads take one
//! REPEATABLE READ snapshot. The client is synchronous:
//! call it from blocking threads (`spawn_blocking`), never on an async worker.
//!
//! TLS follows the connection string's libpq-style `sslmode` and `sslrootcert`
//! ([`conninfo`]); use `sslmode=verify-full` with a CA file for anything but loopback.

pub mod conninfo;
mod ddi;
mod enrollment;
mod migrations;
mod pool;
mod queries;
pub mod tls;

use std::collections::BTreeSet;
use std::str::FromStr;
use std::time::Duration;

use postgres::error::SqlState;
use postgres::types::ToSql;
use postgres::{GenericClient, IsolationLevel, Row, Transaction};
use skerry_rollout::{
    DeviceFacts, MaintenanceWindow, PauseReason, Pin, Rollout, RolloutState, UnixTime, WaveSeed,
    WaveStats, Weekdays,
};

pub use migrations::{pg_latest, PG_MIGRATIONS};
pub use pool::POOL_WAIT;

use crate::lease::{may_take, Lease, LeaseStore};
use crate::model::*;
use crate::sqlite::{
    count_outcome, damaged, health_text, labels_from, labels_to, parse_version, reason_to,
    rollout_from, slots_json, waves_to, RolloutRow, ROLLOUT_COLUMNS,
};
use crate::{CheckInRecord, FleetStore, RolloutWithStats, StoreError};

/// Connections one store keeps open at most.
pub const POOL_SIZE: usize = 8;
/// Attempts of one transaction that keeps conflicting before it fails.
pub const MAX_ATTEMPTS: u32 = 24;

/// The PostgreSQL store.
#[derive(Debug)]
pub struct PgStore {
    pool: pool::Pool,
}

/// `host:port/dbname as user` of a connection string, without its password.
fn describe(config: &postgres::Config) -> String {
    let host = config
        .get_hosts()
        .first()
        .map(|h| match h {
            postgres::config::Host::Tcp(name) => name.clone(),
            postgres::config::Host::Unix(path) => path.display().to_string(),
        })
        .unwrap_or_else(|| "localhost".into());
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!(
        "{host}:{port}/{} as {}",
        config.get_dbname().unwrap_or("(default)"),
        config.get_user().unwrap_or("(default user)")
    )
}

fn retryable(e: &postgres::Error) -> bool {
    matches!(
        e.code(),
        Some(c) if *c == SqlState::T_R_SERIALIZATION_FAILURE || *c == SqlState::T_R_DEADLOCK_DETECTED
    )
}

/// Whether a store error is a conflict worth retrying the whole transaction for.
fn conflict(e: &StoreError) -> bool {
    matches!(e, StoreError::Pg { source, .. } if retryable(source))
}

impl PgStore {
    /// Connects to `url` (`postgres://user[:password]@host[:port]/dbname` or
    /// `host=… dbname=…`, with libpq's `sslmode` and `sslrootcert`) and migrates the database to the latest schema.
    pub fn open(url: &str) -> Result<Self, StoreError> {
        let info = conninfo::Conninfo::parse(url)?;
        let config =
            postgres::Config::from_str(&info.rest).map_err(|source| StoreError::PgConnect {
                target: "(the --database connection string)".into(),
                source,
            })?;
        let target = describe(&config);
        let tls = tls::DatabaseTls::new(&info.verify)?;
        let store = Self {
            pool: pool::Pool::new(config, tls, target, POOL_SIZE),
        };
        let mut conn = store.pool.get("opening the database")?;
        migrations::migrate(&mut conn, &store.pool.target)?;
        drop(conn);
        Ok(store)
    }

    /// The schema version of the database.
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        let doing = "reading the schema version";
        let mut conn = self.pool.get(doing)?;
        migrations::version(&mut conn).map_err(StoreError::pg(doing))
    }

    /// The database as shown in messages (no password).
    pub fn target(&self) -> &str {
        &self.pool.target
    }

    /// Runs `f` in one SERIALIZABLE transaction, again from the start on a conflict.
    fn write<T>(
        &self,
        doing: &'static str,
        f: impl FnMut(&mut Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.write_at(IsolationLevel::Serializable, doing, f)
    }

    /// [`Self::write`] at `level`.
    fn write_at<T>(
        &self,
        level: IsolationLevel,
        doing: &'static str,
        mut f: impl FnMut(&mut Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        for attempt in 1..=MAX_ATTEMPTS {
            let mut conn = self.pool.get(doing)?;
            let mut tx = conn
                .build_transaction()
                .isolation_level(level)
                .start()
                .map_err(StoreError::pg(doing))?;
            let result = f(&mut tx).and_then(|out| {
                tx.commit().map_err(StoreError::pg(doing))?;
                Ok(out)
            });
            match result {
                Err(e) if conflict(&e) => backoff(attempt),
                other => return other,
            }
        }
        Err(StoreError::Contended {
            doing,
            attempts: MAX_ATTEMPTS,
        })
    }

    /// Runs `f` on one read-only snapshot.
    fn read<T>(
        &self,
        doing: &'static str,
        f: impl FnOnce(&mut Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.pool.get(doing)?;
        let mut tx = conn
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .map_err(StoreError::pg(doing))?;
        let out = f(&mut tx)?;
        tx.commit().map_err(StoreError::pg(doing))?;
        Ok(out)
    }
}

/// Waits a little longer after each conflict, with jitter so two instances that
/// collided do not collide again in step.
fn backoff(attempt: u32) {
    let jitter = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos() % 5_000_000);
    let base = 2_000_000u64 * u64::from(attempt.min(10));
    std::thread::sleep(Duration::from_nanos(base + u64::from(jitter)));
}

fn get<'a, T: postgres::types::FromSql<'a>>(
    row: &'a Row,
    i: usize,
    doing: &'static str,
) -> Result<T, StoreError> {
    row.try_get(i).map_err(StoreError::pg(doing))
}

fn append_timeline(
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
fn load_rollouts_only(
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

fn load_rollouts(
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

fn device_record(
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

impl FleetStore for PgStore {
    fn check_in(&self, c: &CheckIn, now: UnixTime) -> Result<CheckInRecord, StoreError> {
        let doing = "recording a check-in";
        // REPEATABLE READ, the device's row first: see the module's note.
        self.write_at(IsolationLevel::RepeatableRead, doing, |tx| {
            if c.admission != crate::Admission::Open {
                let identity = crate::pg::enrollment::identity_row(tx, &c.device)?;
                if let Err(refusal) = c.admission.admits(identity.as_ref()) {
                    return Err(StoreError::NotAdmitted {
                        device: c.device.clone(),
                        refusal,
                    });
                }
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
        })
    }

    fn rollouts_for(
        &self,
        board: &str,
        channel: &str,
    ) -> Result<Vec<RolloutWithStats>, StoreError> {
        self.read("reading rollouts", |tx| {
            load_rollouts(tx, "WHERE board = $1 AND channel = $2", &[&board, &channel])
        })
    }

    fn rollouts(&self) -> Result<Vec<RolloutWithStats>, StoreError> {
        self.read("reading rollouts", |tx| load_rollouts(tx, "", &[]))
    }

    fn record_offer(
        &self,
        rollout_id: &str,
        device: &str,
        wave: Option<usize>,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        let doing = "recording an offer";
        self.write(doing, |tx| {
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
        })
    }

    fn pause_if_active(
        &self,
        rollout_id: &str,
        reason: &PauseReason,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        let doing = "pausing a rollout";
        self.write(doing, |tx| {
            tx.execute(
                "UPDATE rollouts SET state = 'paused', paused_since = $2, pause_reason = $3
                 WHERE id = $1 AND state = 'active'",
                &[&rollout_id, &(now.0 as i64), &reason_to(reason)],
            )
            .map_err(StoreError::pg(doing))?;
            Ok(())
        })
    }

    fn create_rollout(&self, r: &Rollout) -> Result<(), StoreError> {
        let doing = "creating a rollout";
        self.write(doing, |tx| {
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
                    release: format!("{} {} ({})", r.release.board, r.release.version, r.release.channel),
                }),
                other => other.map(|_| ()).map_err(StoreError::pg(doing)),
            }
        })
    }

    fn act_on_rollout(
        &self,
        id: &str,
        action: &RolloutAction,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        let doing = "changing a rollout";
        self.write(doing, |tx| {
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
                    tx.execute("UPDATE rollouts SET state = 'aborted' WHERE id = $1", &[&id])
                        .map_err(StoreError::pg(doing))?;
                }
            }
            Ok(())
        })
    }

    fn set_pin(&self, device: &str, pin: Option<&Pin>) -> Result<(), StoreError> {
        let doing = "pinning a device";
        self.write(doing, |tx| {
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
        })
    }

    fn add_window(&self, w: &MaintenanceWindow) -> Result<(), StoreError> {
        let doing = "adding a maintenance window";
        self.write(doing, |tx| {
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
        })
    }

    fn windows(&self) -> Result<Vec<MaintenanceWindow>, StoreError> {
        let doing = "reading maintenance windows";
        self.read(doing, |tx| {
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
        })
    }

    fn device(&self, id: &str) -> Result<Option<DeviceRecord>, StoreError> {
        self.read("reading a device", |tx| device_record(tx, id))
    }

    fn timeline(&self, id: &str) -> Result<Vec<TimelineEntry>, StoreError> {
        let doing = "reading a timeline";
        self.read(doing, |tx| {
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
        })
    }
}

impl LeaseStore for PgStore {
    fn take_lease(
        &self,
        name: &str,
        holder: &str,
        now: UnixTime,
        length: Duration,
    ) -> Result<Option<Lease>, StoreError> {
        let doing = "taking a lease";
        self.write(doing, |tx| {
            let row = tx
                .query_opt(
                    "SELECT holder, expires_at, generation FROM leases WHERE name = $1 FOR UPDATE",
                    &[&name],
                )
                .map_err(StoreError::pg(doing))?;
            let generation: i64 = match row {
                None => 1,
                Some(r) => {
                    let h: String = get(&r, 0, doing)?;
                    let expires: i64 = get(&r, 1, doing)?;
                    let g: i64 = get(&r, 2, doing)?;
                    if !may_take(&h, expires.max(0) as u64, holder, now) {
                        return Ok(None);
                    }
                    if h == holder {
                        g
                    } else {
                        g + 1
                    }
                }
            };
            let expires = now.0 + length.as_secs();
            tx.execute(
                "INSERT INTO leases (name, holder, expires_at, generation) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (name) DO UPDATE SET holder = $2, expires_at = $3, generation = $4",
                &[&name, &holder, &(expires as i64), &generation],
            )
            .map_err(StoreError::pg(doing))?;
            Ok(Some(Lease {
                generation: generation as u64,
                expires: UnixTime(expires),
            }))
        })
    }

    fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        let doing = "releasing a lease";
        self.write(doing, |tx| {
            tx.execute(
                "UPDATE leases SET expires_at = 0 WHERE name = $1 AND holder = $2",
                &[&name, &holder],
            )
            .map_err(StoreError::pg(doing))?;
            Ok(())
        })
    }
}
