//! The schema as numbered migrations. Migration `n` takes a database at version `n - 1`
//! to `n`; the version lives in SQLite's `user_version`. Opening a database applies
//! every missing migration in one transaction each, and refuses a database newer than
//! this code. Migrations are never edited once released: a change is a new migration.

/// Each migration's SQL, in order; index 0 is version 1.
pub const MIGRATIONS: &[&str] = &[
    // 1: devices and their timelines.
    "CREATE TABLE devices (
        id TEXT PRIMARY KEY,
        board TEXT NOT NULL,
        version TEXT NOT NULL,
        channel TEXT NOT NULL,
        labels TEXT NOT NULL,
        health TEXT NOT NULL,
        slots TEXT NOT NULL,
        first_seen INTEGER NOT NULL,
        last_seen INTEGER NOT NULL
    );
    CREATE TABLE timeline (
        device_id TEXT NOT NULL REFERENCES devices(id),
        seq INTEGER NOT NULL,
        at INTEGER NOT NULL,
        kind TEXT NOT NULL,
        version TEXT NOT NULL,
        detail TEXT NOT NULL,
        PRIMARY KEY (device_id, seq)
    );",
    // 2: rollouts, per-device outcomes, rollbacks kept for good, pins, report
    // acknowledgement, maintenance windows.
    "ALTER TABLE devices ADD COLUMN pin_version TEXT;
    ALTER TABLE devices ADD COLUMN pin_force INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE devices ADD COLUMN acknowledged INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE device_rollbacks (
        device_id TEXT NOT NULL REFERENCES devices(id),
        version TEXT NOT NULL,
        at INTEGER NOT NULL,
        PRIMARY KEY (device_id, version)
    );
    CREATE TABLE rollouts (
        id TEXT PRIMARY KEY,
        board TEXT NOT NULL,
        version TEXT NOT NULL,
        channel TEXT NOT NULL,
        started_at INTEGER NOT NULL,
        waves TEXT NOT NULL,
        max_bad_permille INTEGER NOT NULL,
        min_sample INTEGER NOT NULL,
        force INTEGER NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('active', 'paused', 'aborted')),
        paused_since INTEGER,
        pause_reason TEXT,
        UNIQUE (board, version, channel)
    );
    CREATE TABLE rollout_devices (
        rollout_id TEXT NOT NULL REFERENCES rollouts(id),
        device_id TEXT NOT NULL REFERENCES devices(id),
        wave INTEGER,
        outcome TEXT NOT NULL CHECK (outcome IN ('offered', 'started', 'committed', 'failed', 'rolled_back')),
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (rollout_id, device_id)
    );
    CREATE TABLE maintenance_windows (
        id INTEGER PRIMARY KEY,
        selector TEXT NOT NULL,
        days INTEGER NOT NULL,
        start_minute INTEGER NOT NULL,
        length_minutes INTEGER NOT NULL
    );",
    // 3: leases (one server instance at a time does a duty such as timestamp re-signing).
    "CREATE TABLE leases (
        name TEXT PRIMARY KEY,
        holder TEXT NOT NULL,
        expires_at INTEGER NOT NULL,
        generation INTEGER NOT NULL
    );",
    // 4: enrollment: join tokens (secret hashes only), device identities, device logs.
    "CREATE TABLE join_tokens (
        id TEXT PRIMARY KEY,
        secret_sha256 BLOB NOT NULL,
        uses INTEGER NOT NULL,
        used INTEGER NOT NULL DEFAULT 0,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        revoked_at INTEGER,
        labels TEXT NOT NULL
    );
    CREATE TABLE device_identities (
        device_id TEXT PRIMARY KEY,
        board TEXT NOT NULL,
        serial TEXT NOT NULL,
        not_after INTEGER NOT NULL,
        token_id TEXT NOT NULL,
        enrolled_at INTEGER NOT NULL,
        revoked_at INTEGER
    );
    CREATE TABLE device_logs (
        device_id TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('console', 'events')),
        seq INTEGER NOT NULL,
        received_at INTEGER NOT NULL,
        text TEXT NOT NULL,
        PRIMARY KEY (device_id, kind, seq)
    );
    CREATE TABLE device_log_tokens (
        token_id TEXT NOT NULL,
        device_id TEXT NOT NULL,
        PRIMARY KEY (token_id, device_id)
    );",
    // 5: hawkBit DDI: targets (token hashes only), their actions, their configData.
    "CREATE TABLE ddi_targets (
        device_id TEXT PRIMARY KEY,
        token_sha256 BLOB NOT NULL UNIQUE,
        board TEXT NOT NULL,
        channel TEXT NOT NULL,
        version TEXT NOT NULL,
        attributes TEXT,
        created_at INTEGER NOT NULL
    );
    CREATE TABLE ddi_actions (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        device_id TEXT NOT NULL REFERENCES ddi_targets(device_id),
        rollout_id TEXT NOT NULL,
        version TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('open', 'succeeded', 'failed', 'canceling', 'canceled')),
        created_at INTEGER NOT NULL
    );",
];

/// The schema version this code writes.
pub fn latest() -> i64 {
    MIGRATIONS.len() as i64
}
