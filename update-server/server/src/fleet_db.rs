//! The database the server and its operator commands share: the embedded SQLite file in
//! the data directory, or PostgreSQL with `--database`, behind one object-safe trait so
//! that the operator API, the dashboard, metrics, hawkBit DDI and the `skerry-server`
//! commands read and change the same records whichever it is.

use std::path::Path;
use std::sync::Arc;

use skerry_fleet_store::{
    DdiStore, EnrollmentStore, FleetQueries, FleetStore, LeaseStore, PgStore, SqliteStore,
    StoreError,
};

use crate::data::{DataDir, DataError};

/// Everything the server asks of its database.
pub trait ServerStore: FleetStore + LeaseStore + EnrollmentStore + FleetQueries + DdiStore {}

impl<T> ServerStore for T where
    T: FleetStore + LeaseStore + EnrollmentStore + FleetQueries + DdiStore
{
}

/// The data directory (repository, keys, PKI) and the database in use.
#[derive(Clone)]
pub struct FleetDb {
    pub dir: DataDir,
    pub store: Arc<dyn ServerStore>,
}

impl std::fmt::Debug for FleetDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FleetDb")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

/// Why the data directory or the database could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("{0}")]
    Data(#[from] DataError),
    #[error("{0}")]
    Store(#[from] StoreError),
}

impl FleetDb {
    /// Prepares `data` and opens PostgreSQL at `database`, or else the embedded database
    /// in `data`, running the schema migrations. PostgreSQL's client blocks: call this
    /// from a blocking thread, never on an async worker.
    pub fn open(data: &Path, database: Option<&str>) -> Result<Self, OpenError> {
        let dir = DataDir::prepare(data)?;
        let store: Arc<dyn ServerStore> = match database {
            Some(url) => Arc::new(PgStore::open(url)?),
            None => Arc::new(SqliteStore::open(&dir.database())?),
        };
        Ok(Self { dir, store })
    }
}
