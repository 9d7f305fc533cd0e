//! The embedded store: one SQLite file (WAL journal, full sync, so a report is durable
//! once its check-in is answered), migrated at open. The check-in's transaction is in
//! `sqlite_check_in.rs`, rollouts, pins and maintenance windows in `sqlite_rollouts.rs`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use rusqlite::{params, Connection, OptionalExtension, Transaction};
use semver::Version;
use serde_json::{json, Value};
use skerry_rollout::{MaintenanceWindow, PauseReason, Pin, Rollout, UnixTime};

use crate::lease::{may_take, Lease, LeaseStore};
use crate::migrations::{latest, MIGRATIONS};
use crate::model::*;
use crate::sqlite_cached::Cached;
use crate::sqlite_check_in::{device_record, read_timeline};
use crate::sqlite_rollouts::{self, load_rollouts, read_windows};
use crate::{CheckInRecord, FleetStore, RolloutWithStats, StoreError};

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
            sqlite_rollouts::record_offer(tx, rollout_id, device, wave, now)
        })
    }

    fn pause_if_active(
        &self,
        rollout_id: &str,
        reason: &PauseReason,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        self.write("pausing a rollout", |tx| {
            sqlite_rollouts::pause_if_active(tx, rollout_id, reason, now)
        })
    }

    fn create_rollout(&self, r: &Rollout) -> Result<(), StoreError> {
        self.write("creating a rollout", |tx| {
            sqlite_rollouts::create_rollout(tx, r)
        })
    }

    fn act_on_rollout(
        &self,
        id: &str,
        action: &RolloutAction,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        self.write("changing a rollout", |tx| {
            sqlite_rollouts::act_on_rollout(tx, id, action, now)
        })
    }

    fn set_pin(&self, device: &str, pin: Option<&Pin>) -> Result<(), StoreError> {
        self.write("pinning a device", |tx| {
            sqlite_rollouts::set_pin(tx, device, pin)
        })
    }

    fn add_window(&self, w: &MaintenanceWindow) -> Result<(), StoreError> {
        self.write("adding a maintenance window", |tx| {
            sqlite_rollouts::add_window(tx, w)
        })
    }

    fn windows(&self) -> Result<Vec<MaintenanceWindow>, StoreError> {
        read_windows(&self.lock())
    }

    fn device(&self, id: &str) -> Result<Option<DeviceRecord>, StoreError> {
        device_record(&self.lock(), id)
    }

    fn timeline(&self, id: &str) -> Result<Vec<TimelineEntry>, StoreError> {
        read_timeline(&self.lock(), id)
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
