//! Group commit for the SQLite store: check-ins that arrive while another is being
//! written wait for the connection, and whoever takes it next writes every waiting
//! check-in in one transaction, so one fsync makes a whole group durable. A caller is
//! answered only after the transaction holding its check-in committed.
//!
//! If a group's transaction fails, each of its check-ins is retried in a transaction of
//! its own, so one bad check-in cannot fail the others.

use std::sync::{Arc, Mutex};

use rusqlite::TransactionBehavior;

use crate::model::CheckIn;
use crate::sqlite::{check_in_tx, SqliteStore};
use crate::{CheckInRecord, StoreError};
use skerry_rollout::UnixTime;

/// At most this many check-ins go into one transaction.
pub const GROUP_LIMIT: usize = 512;

type Outcome = Arc<Mutex<Option<Result<CheckInRecord, StoreError>>>>;

struct Waiting {
    check_in: CheckIn,
    now: UnixTime,
    outcome: Outcome,
}

/// The check-ins waiting for the connection.
#[derive(Default)]
pub struct Queue(Mutex<Vec<Waiting>>);

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue").finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

pub(crate) fn check_in(
    store: &SqliteStore,
    queue: &Queue,
    c: &CheckIn,
    now: UnixTime,
) -> Result<CheckInRecord, StoreError> {
    let outcome: Outcome = Arc::default();
    lock(&queue.0).push(Waiting {
        check_in: c.clone(),
        now,
        outcome: Arc::clone(&outcome),
    });
    loop {
        let mut conn = store.lock();
        // A group written while we waited for the connection may have held ours.
        if let Some(done) = lock(&outcome).take() {
            return done;
        }
        let group: Vec<Waiting> = {
            let mut waiting = lock(&queue.0);
            let n = waiting.len().min(GROUP_LIMIT);
            waiting.drain(..n).collect()
        };
        let answered = AnswerAll(&group);
        write_group(&mut conn, answered.0);
        drop(answered);
        drop(conn);
        // Ours was in the group unless more than GROUP_LIMIT were ahead of it; then
        // take the connection again (groups start with the oldest waiting, so it ends).
        if let Some(done) = lock(&outcome).take() {
            return done;
        }
    }
}

/// Answers every check-in of a group the writer left unanswered (it panicked), so none
/// of their callers waits for an outcome that never comes.
struct AnswerAll<'a>(&'a [Waiting]);

impl Drop for AnswerAll<'_> {
    fn drop(&mut self) {
        for w in self.0 {
            let mut outcome = lock(&w.outcome);
            if outcome.is_none() {
                *outcome = Some(Err(StoreError::Damaged {
                    what: format!("the check-in of {}", w.check_in.device),
                    reason: "the group it was written with failed; retry".into(),
                }));
            }
        }
    }
}

fn write_group(conn: &mut rusqlite::Connection, group: &[Waiting]) {
    let doing = "recording a check-in";
    let mut one_transaction = |items: &[Waiting]| {
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(StoreError::sql(doing))?;
        let mut records = Vec::with_capacity(items.len());
        for w in items {
            records.push(check_in_tx(&tx, &w.check_in, w.now)?);
        }
        tx.commit().map_err(StoreError::sql(doing))?;
        Ok::<_, StoreError>(records)
    };
    match one_transaction(group) {
        Ok(records) => {
            for (w, r) in group.iter().zip(records) {
                *lock(&w.outcome) = Some(Ok(r));
            }
        }
        // One of them failed and took the group's transaction with it: write each
        // alone, so only the failing one is refused.
        Err(_) => {
            for w in group {
                let alone = one_transaction(std::slice::from_ref(w))
                    .map(|mut r| r.pop().expect("one record per check-in"));
                *lock(&w.outcome) = Some(alone);
            }
        }
    }
}
