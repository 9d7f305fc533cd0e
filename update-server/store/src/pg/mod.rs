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

mod check_in;
pub mod conninfo;
mod ddi;
mod enrollment;
mod migrations;
mod pool;
mod queries;
mod rollouts;
pub mod tls;

use std::str::FromStr;
use std::time::Duration;

use postgres::error::SqlState;
use postgres::{IsolationLevel, Row, Transaction};
use skerry_rollout::{MaintenanceWindow, PauseReason, Pin, Rollout, UnixTime};

pub use migrations::{pg_latest, PG_MIGRATIONS};
pub use pool::POOL_WAIT;

use crate::lease::{may_take, Lease, LeaseStore};
use crate::model::*;
use crate::{CheckInRecord, FleetStore, RolloutWithStats, StoreError};
use check_in::device_record;
use rollouts::load_rollouts;

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
        let tls = tls::DatabaseTls::new(&info.verify, info.client.as_ref())?;
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

impl FleetStore for PgStore {
    fn check_in(&self, c: &CheckIn, now: UnixTime) -> Result<CheckInRecord, StoreError> {
        // REPEATABLE READ, the device's row first: see the module's note.
        self.write_at(
            IsolationLevel::RepeatableRead,
            "recording a check-in",
            |tx| check_in::check_in_tx(tx, c, now),
        )
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
        self.write("recording an offer", |tx| {
            rollouts::record_offer(tx, rollout_id, device, wave, now)
        })
    }

    fn pause_if_active(
        &self,
        rollout_id: &str,
        reason: &PauseReason,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        self.write("pausing a rollout", |tx| {
            rollouts::pause_if_active(tx, rollout_id, reason, now)
        })
    }

    fn create_rollout(&self, r: &Rollout) -> Result<(), StoreError> {
        self.write("creating a rollout", |tx| rollouts::create_rollout(tx, r))
    }

    fn act_on_rollout(
        &self,
        id: &str,
        action: &RolloutAction,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        self.write("changing a rollout", |tx| {
            rollouts::act_on_rollout(tx, id, action, now)
        })
    }

    fn set_pin(&self, device: &str, pin: Option<&Pin>) -> Result<(), StoreError> {
        self.write("pinning a device", |tx| rollouts::set_pin(tx, device, pin))
    }

    fn add_window(&self, w: &MaintenanceWindow) -> Result<(), StoreError> {
        self.write("adding a maintenance window", |tx| {
            rollouts::add_window(tx, w)
        })
    }

    fn windows(&self) -> Result<Vec<MaintenanceWindow>, StoreError> {
        self.read("reading maintenance windows", rollouts::read_windows)
    }

    fn device(&self, id: &str) -> Result<Option<DeviceRecord>, StoreError> {
        self.read("reading a device", |tx| device_record(tx, id))
    }

    fn timeline(&self, id: &str) -> Result<Vec<TimelineEntry>, StoreError> {
        self.read("reading a timeline", |tx| check_in::read_timeline(tx, id))
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
