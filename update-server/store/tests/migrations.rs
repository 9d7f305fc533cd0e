//! Versioned migrations: a database written at schema 1 (before rollouts existed) is
//! migrated at open and keeps its devices and timelines; a newer schema is refused.

use rusqlite::Connection;
use skerry_fleet_store::migrations::{latest, MIGRATIONS};
use skerry_fleet_store::{FleetStore, SqliteStore, StoreError};

#[test]
fn a_schema_1_database_is_migrated_at_open_and_keeps_its_rows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fleet.db");
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(MIGRATIONS[0]).unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        conn.execute(
            "INSERT INTO devices VALUES ('old-1', 'pi', '1.0.0', 'stable', '{\"site\":\"a\"}', 'healthy', '[]', 10, 20)",
            [],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO timeline VALUES ('old-1', 1, 10, 'enrolled', '1.0.0', 'healthy')",
            [],
        )
        .unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.schema_version().unwrap(), latest());
    assert!(latest() >= 2);
    let device = store.device("old-1").unwrap().unwrap();
    assert_eq!(device.version.to_string(), "1.0.0");
    assert_eq!(device.labels.get("site").map(String::as_str), Some("a"));
    // The columns migration 2 added have their defaults.
    assert_eq!((device.pin, device.acknowledged), (None, 0));
    assert_eq!(store.timeline("old-1").unwrap().len(), 1);
    // And the tables it added work.
    assert!(store.rollouts().unwrap().is_empty());
    drop(store);
    // Opening again is a no-op.
    assert_eq!(
        SqliteStore::open(&path).unwrap().schema_version().unwrap(),
        latest()
    );
}

#[test]
fn a_fresh_database_gets_every_migration() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("new.db")).unwrap();
    assert_eq!(store.schema_version().unwrap(), latest());
}

#[test]
fn a_database_from_a_newer_server_is_refused_by_version() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fleet.db");
    Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", latest() + 1)
        .unwrap();
    let err = SqliteStore::open(&path).unwrap_err();
    assert!(
        matches!(err, StoreError::NewerSchema { found, known, .. } if found == latest() + 1 && known == latest()),
        "{err}"
    );
    assert!(
        err.to_string().contains("run a newer skerry-server"),
        "{err}"
    );
}

#[test]
fn a_file_that_is_not_a_database_is_refused_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fleet.db");
    std::fs::write(&path, vec![0x55; 4096]).unwrap();
    let err = SqliteStore::open(&path).unwrap_err();
    assert!(err.to_string().contains("fleet.db"), "{err}");
}

#[path = "support/pg_cluster.rs"]
mod pg_cluster;

#[test]
fn postgres_migrates_once_and_refuses_a_newer_schema() {
    use skerry_fleet_store::pg::pg_latest;
    use skerry_fleet_store::PgStore;
    let cluster = pg_cluster::PgCluster::start();
    let url = cluster.database();
    // Two instances opening together migrate once (the advisory lock).
    let opens: Vec<_> = (0..2)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || PgStore::open(&url).map(|s| s.schema_version()))
        })
        .collect();
    for open in opens {
        assert_eq!(open.join().unwrap().unwrap().unwrap(), pg_latest());
    }
    let store = PgStore::open(&url).unwrap();
    assert!(store.rollouts().unwrap().is_empty());
    drop(store);
    let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    c.execute(
        "UPDATE schema_version SET version = $1",
        &[&(pg_latest() + 1)],
    )
    .unwrap();
    let err = PgStore::open(&url).unwrap_err();
    assert!(
        matches!(err, StoreError::PgNewerSchema { found, known, .. } if found == pg_latest() + 1 && known == pg_latest()),
        "{err}"
    );
    assert!(
        err.to_string().contains("run a newer skerry-server"),
        "{err}"
    );
    // A database that is not there is named, without a password.
    let err = PgStore::open(&format!(
        "postgres://postgres:secret@127.0.0.1:{}/nothere",
        cluster.port
    ))
    .unwrap_err();
    let text = pg_cluster::error_chain(&err);
    assert!(
        text.contains("nothere") && !text.contains("secret"),
        "{text}"
    );
}
