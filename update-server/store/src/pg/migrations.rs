//! The PostgreSQL schema as numbered migrations, the version in a one-row
//! `schema_version` table. Opening applies the missing ones in one transaction under an
//! advisory lock (instances starting together migrate once) and refuses a database
//! newer than this code. Released migrations are never edited: a change is a new one.

use postgres::Client;

use crate::StoreError;

/// Taken for the migration transaction so concurrent opens wait for each other.
const MIGRATION_LOCK: i64 = 0x736b_6572_7279_0001;

/// Each migration's SQL, in order; index 0 is version 1.
pub const PG_MIGRATIONS: &[&str] = &[
    // 1: the schema of SQLite's migrations 1-3 (devices, timelines, rollouts, outcomes,
    // rollbacks, pins, windows, leases).
    "CREATE TABLE devices (
        id TEXT PRIMARY KEY,
        board TEXT NOT NULL,
        version TEXT NOT NULL,
        channel TEXT NOT NULL,
        labels TEXT NOT NULL,
        health TEXT NOT NULL,
        slots TEXT NOT NULL,
        first_seen BIGINT NOT NULL,
        last_seen BIGINT NOT NULL,
        pin_version TEXT,
        pin_force BOOLEAN NOT NULL DEFAULT FALSE,
        acknowledged BIGINT NOT NULL DEFAULT 0
    );
    CREATE TABLE timeline (
        device_id TEXT NOT NULL REFERENCES devices(id),
        seq BIGINT NOT NULL,
        at BIGINT NOT NULL,
        kind TEXT NOT NULL,
        version TEXT NOT NULL,
        detail TEXT NOT NULL,
        PRIMARY KEY (device_id, seq)
    );
    CREATE TABLE device_rollbacks (
        device_id TEXT NOT NULL REFERENCES devices(id),
        version TEXT NOT NULL,
        at BIGINT NOT NULL,
        PRIMARY KEY (device_id, version)
    );
    CREATE TABLE rollouts (
        id TEXT PRIMARY KEY,
        board TEXT NOT NULL,
        version TEXT NOT NULL,
        channel TEXT NOT NULL,
        started_at BIGINT NOT NULL,
        waves TEXT NOT NULL,
        max_bad_permille BIGINT NOT NULL,
        min_sample BIGINT NOT NULL,
        force BOOLEAN NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('active', 'paused', 'aborted')),
        paused_since BIGINT,
        pause_reason TEXT,
        UNIQUE (board, version, channel)
    );
    CREATE TABLE rollout_devices (
        rollout_id TEXT NOT NULL REFERENCES rollouts(id),
        device_id TEXT NOT NULL REFERENCES devices(id),
        wave BIGINT,
        outcome TEXT NOT NULL CHECK (outcome IN ('offered', 'started', 'committed', 'failed', 'rolled_back')),
        updated_at BIGINT NOT NULL,
        PRIMARY KEY (rollout_id, device_id)
    );
    CREATE TABLE maintenance_windows (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        selector TEXT NOT NULL,
        days BIGINT NOT NULL,
        start_minute BIGINT NOT NULL,
        length_minutes BIGINT NOT NULL
    );
    CREATE TABLE leases (
        name TEXT PRIMARY KEY,
        holder TEXT NOT NULL,
        expires_at BIGINT NOT NULL,
        generation BIGINT NOT NULL
    );",
    // 2: enrollment (SQLite's migration 4): join tokens (secret hashes only), device
    // identities, device logs.
    "CREATE TABLE join_tokens (
        id TEXT PRIMARY KEY,
        secret_sha256 BYTEA NOT NULL,
        uses BIGINT NOT NULL,
        used BIGINT NOT NULL DEFAULT 0,
        created_at BIGINT NOT NULL,
        expires_at BIGINT NOT NULL,
        revoked_at BIGINT,
        labels TEXT NOT NULL
    );
    CREATE TABLE device_identities (
        device_id TEXT PRIMARY KEY,
        board TEXT NOT NULL,
        serial TEXT NOT NULL,
        not_after BIGINT NOT NULL,
        token_id TEXT NOT NULL,
        enrolled_at BIGINT NOT NULL,
        revoked_at BIGINT
    );
    CREATE TABLE device_logs (
        device_id TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('console', 'events')),
        seq BIGINT NOT NULL,
        received_at BIGINT NOT NULL,
        text TEXT NOT NULL,
        PRIMARY KEY (device_id, kind, seq)
    );
    CREATE TABLE device_log_tokens (
        token_id TEXT NOT NULL,
        device_id TEXT NOT NULL,
        PRIMARY KEY (token_id, device_id)
    );",
    // 3: hawkBit DDI (SQLite's migration 5): targets (token hashes only), their actions,
    // their configData.
    "CREATE TABLE ddi_targets (
        device_id TEXT PRIMARY KEY,
        token_sha256 BYTEA NOT NULL UNIQUE,
        board TEXT NOT NULL,
        channel TEXT NOT NULL,
        version TEXT NOT NULL,
        attributes TEXT,
        created_at BIGINT NOT NULL
    );
    CREATE TABLE ddi_actions (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        device_id TEXT NOT NULL REFERENCES ddi_targets(device_id),
        rollout_id TEXT NOT NULL,
        version TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('open', 'succeeded', 'failed', 'canceling', 'canceled')),
        created_at BIGINT NOT NULL
    );",
];

/// The PostgreSQL schema version this code writes.
pub fn pg_latest() -> i64 {
    PG_MIGRATIONS.len() as i64
}

/// The schema version of the database `client` is connected to (0 if none yet).
pub(crate) fn version(client: &mut Client) -> Result<i64, postgres::Error> {
    let exists: bool = client
        .query_one("SELECT to_regclass('schema_version') IS NOT NULL", &[])?
        .get(0);
    if !exists {
        return Ok(0);
    }
    Ok(client
        .query_opt("SELECT version FROM schema_version", &[])?
        .map_or(0, |r| r.get(0)))
}

/// Brings the database to [`pg_latest`], or refuses a newer one.
pub(crate) fn migrate(client: &mut Client, target: &str) -> Result<(), StoreError> {
    let err = |version| {
        move |source| StoreError::PgMigrate {
            target: target.into(),
            version,
            source,
        }
    };
    let mut tx = client.transaction().map_err(err(0))?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .map_err(err(0))?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_version (
             one BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (one),
             version BIGINT NOT NULL
         )",
    )
    .map_err(err(0))?;
    let found: i64 = tx
        .query_opt("SELECT version FROM schema_version", &[])
        .map_err(err(0))?
        .map_or(0, |r| r.get(0));
    if found > pg_latest() {
        return Err(StoreError::PgNewerSchema {
            target: target.into(),
            found,
            known: pg_latest(),
        });
    }
    for (index, sql) in PG_MIGRATIONS.iter().enumerate().skip(found.max(0) as usize) {
        let version = index as i64 + 1;
        tx.batch_execute(sql).map_err(err(version))?;
        tx.execute(
            "INSERT INTO schema_version (one, version) VALUES (TRUE, $1)
             ON CONFLICT (one) DO UPDATE SET version = $1",
            &[&version],
        )
        .map_err(err(version))?;
    }
    tx.commit().map_err(err(pg_latest()))
}
