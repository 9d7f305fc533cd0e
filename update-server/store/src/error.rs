//! The store's errors.

use std::path::PathBuf;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the database {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("the database {path} has schema version {found}, newer than this server knows ({known}); run a newer skerry-server")]
    NewerSchema {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    #[error("migrating the database {path} to schema version {version}")]
    Migrate {
        path: PathBuf,
        version: i64,
        #[source]
        source: rusqlite::Error,
    },
    #[error("database error while {doing}")]
    Sql {
        doing: &'static str,
        #[source]
        source: rusqlite::Error,
    },
    #[error("stored {what} is damaged: {reason}")]
    Damaged { what: String, reason: String },
    #[error("the check-in of {device} was not admitted: {refusal:?}")]
    NotAdmitted {
        device: String,
        refusal: crate::model::AdmissionRefusal,
    },
    #[error("the store is busy ({what}); retry later")]
    Busy { what: String },
    #[error("no rollout named {id:?}")]
    NoSuchRollout { id: String },
    #[error("no device named {id:?}")]
    NoSuchDevice { id: String },
    #[error("no join token with id {id:?}")]
    NoSuchToken { id: String },
    #[error("a rollout named {id:?} or of release {release} already exists")]
    RolloutExists { id: String, release: String },
    #[error("the --database connection string")]
    PgConninfo(#[from] crate::pg::conninfo::ConninfoError),
    #[error("TLS to PostgreSQL")]
    PgTls(#[from] crate::pg::tls::TlsSetupError),
    #[error("cannot connect to the PostgreSQL database {target}")]
    PgConnect {
        target: String,
        #[source]
        source: postgres::Error,
    },
    #[error("the PostgreSQL database {target} has schema version {found}, newer than this server knows ({known}); run a newer skerry-server")]
    PgNewerSchema {
        target: String,
        found: i64,
        known: i64,
    },
    #[error("migrating the PostgreSQL database {target} to schema version {version}")]
    PgMigrate {
        target: String,
        version: i64,
        #[source]
        source: postgres::Error,
    },
    #[error("PostgreSQL error while {doing}")]
    Pg {
        doing: &'static str,
        #[source]
        source: postgres::Error,
    },
    #[error("{doing}: still conflicting with concurrent transactions after {attempts} attempts")]
    Contended { doing: &'static str, attempts: u32 },
    #[error("{doing}: all {size} database connections stayed busy for {waited_secs} s")]
    PoolExhausted {
        doing: &'static str,
        size: usize,
        waited_secs: u64,
    },
    #[error("rollout {id:?} is {state}; cannot {action}")]
    BadTransition {
        id: String,
        state: &'static str,
        action: &'static str,
    },
}

impl StoreError {
    pub(crate) fn sql(doing: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
        move |source| StoreError::Sql { doing, source }
    }

    pub(crate) fn pg(doing: &'static str) -> impl FnOnce(postgres::Error) -> StoreError {
        move |source| StoreError::Pg { doing, source }
    }
}
