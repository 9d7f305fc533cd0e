//! A small, bounded pool of PostgreSQL connections: at most `size` are open; a caller
//! waits (bounded by [`POOL_WAIT`]) for one to come back; a connection that broke is
//! dropped rather than handed out again.

use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use postgres::{Client, Config};

use super::tls::DatabaseTls;

use crate::StoreError;

/// How long a caller waits for a free connection before the operation fails.
pub const POOL_WAIT: Duration = Duration::from_secs(30);

struct State {
    idle: Vec<Client>,
    open: usize,
}

pub(crate) struct Pool {
    config: Config,
    tls: DatabaseTls,
    /// The database as printed in errors (never the password).
    pub(crate) target: String,
    size: usize,
    state: Mutex<State>,
    freed: Condvar,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("target", &self.target)
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

/// A connection lent by the pool; given back on drop.
pub(crate) struct Conn<'p> {
    pool: &'p Pool,
    client: Option<Client>,
}

impl std::ops::Deref for Conn<'_> {
    type Target = Client;
    fn deref(&self) -> &Client {
        self.client.as_ref().expect("present until drop")
    }
}

impl std::ops::DerefMut for Conn<'_> {
    fn deref_mut(&mut self) -> &mut Client {
        self.client.as_mut().expect("present until drop")
    }
}

impl Drop for Conn<'_> {
    fn drop(&mut self) {
        let Some(client) = self.client.take() else {
            return;
        };
        let mut state = self.pool.lock();
        if client.is_closed() {
            state.open -= 1;
            discard(vec![client]);
        } else {
            state.idle.push(client);
        }
        drop(state);
        self.pool.freed.notify_one();
    }
}

/// Closes clients on a thread of their own: the synchronous client drives its own
/// runtime when dropped, which is not allowed on an async runtime's thread (a store is
/// often dropped at the end of an async server).
fn discard(clients: Vec<Client>) {
    if clients.is_empty() {
        return;
    }
    let closer = std::thread::spawn(move || drop(clients));
    let _ = closer.join();
}

impl Drop for Pool {
    fn drop(&mut self) {
        discard(std::mem::take(&mut self.lock().idle));
    }
}

impl Pool {
    pub(crate) fn new(config: Config, tls: DatabaseTls, target: String, size: usize) -> Self {
        Self {
            config,
            tls,
            target,
            size: size.max(1),
            state: Mutex::new(State {
                idle: Vec::new(),
                open: 0,
            }),
            freed: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Lends a connection, opening one if fewer than `size` are open.
    pub(crate) fn get(&self, doing: &'static str) -> Result<Conn<'_>, StoreError> {
        let deadline = Instant::now() + POOL_WAIT;
        let mut state = self.lock();
        loop {
            while let Some(client) = state.idle.pop() {
                if client.is_closed() {
                    state.open -= 1;
                    discard(vec![client]);
                    continue;
                }
                return Ok(Conn {
                    pool: self,
                    client: Some(client),
                });
            }
            if state.open < self.size {
                state.open += 1;
                drop(state);
                return match self.config.connect(self.tls.clone()) {
                    Ok(client) => Ok(Conn {
                        pool: self,
                        client: Some(client),
                    }),
                    Err(source) => {
                        self.lock().open -= 1;
                        self.freed.notify_one();
                        Err(StoreError::PgConnect {
                            target: self.target.clone(),
                            source,
                        })
                    }
                };
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(StoreError::PoolExhausted {
                    doing,
                    size: self.size,
                    waited_secs: POOL_WAIT.as_secs(),
                });
            }
            state = self
                .freed
                .wait_timeout(state, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}
