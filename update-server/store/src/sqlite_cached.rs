//! Statements kept prepared on the connection: the check-in path runs the same few
//! statements thousands of times a second, and parsing SQL each time was a visible
//! share of the server's CPU under load.

use rusqlite::{Connection, Params, Row};

/// How many prepared statements one connection keeps (every statement of the store
/// fits, so none is parsed twice).
pub(crate) const STATEMENT_CACHE: usize = 128;

/// `execute` and `query_row` through the connection's statement cache.
pub(crate) trait Cached {
    fn execute_cached<P: Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize>;
    fn query_row_cached<T, P, F>(&self, sql: &str, params: P, f: F) -> rusqlite::Result<T>
    where
        P: Params,
        F: FnOnce(&Row<'_>) -> rusqlite::Result<T>;
}

impl Cached for Connection {
    fn execute_cached<P: Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize> {
        self.prepare_cached(sql)?.execute(params)
    }

    fn query_row_cached<T, P, F>(&self, sql: &str, params: P, f: F) -> rusqlite::Result<T>
    where
        P: Params,
        F: FnOnce(&Row<'_>) -> rusqlite::Result<T>,
    {
        self.prepare_cached(sql)?.query_row(params, f)
    }
}
