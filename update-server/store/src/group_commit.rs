//! Group commit for the SQLite store: one writer thread takes check-ins from a
//! channel, writes every check-in waiting there in one transaction, so one fsync makes
//! a whole group durable, and answers each caller only after that transaction
//! committed. After the commit it reads, on the same connection, what the rollout
//! decision needs (the rollouts of each board and channel in the group, the maintenance
//! windows), so a caller needs no second turn at the connection.
//!
//! One thread owns the work, so a check-in costs a channel send and one wake-up of its
//! caller, not a race of blocking threads for the connection's lock: under load those
//! hand-offs, not SQL, were most of the server's time.
//!
//! If one of a group's check-ins fails (or the writing panics), each is written again in
//! a transaction of its own, so one bad check-in cannot fail the others; if the
//! transaction itself cannot begin or commit, the whole group is answered with that.
//! The channel is bounded ([`QUEUE_LIMIT`]): past it a check-in is refused as busy.

use std::collections::HashMap;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use rusqlite::{Connection, TransactionBehavior};

use crate::model::CheckIn;
use crate::sqlite_check_in::check_in_tx;
use crate::sqlite_rollouts::decision_reads;
use crate::{CheckInRecord, DecisionInputs, StoreError};
use skerry_rollout::UnixTime;

/// At most this many check-ins go into one transaction.
pub const GROUP_LIMIT: usize = 512;

/// At most this many check-ins wait for the writer; more are refused as busy (the
/// device retries) rather than queued without bound while the disk is slow.
pub const QUEUE_LIMIT: usize = 8 * GROUP_LIMIT;

/// Where a check-in's outcome goes.
enum Reply {
    /// An async caller, woken by the answer.
    Async(tokio::sync::oneshot::Sender<Outcome>),
    /// A blocking caller, waiting on the channel.
    Blocking(mpsc::SyncSender<Outcome>),
}

impl Reply {
    /// The caller no longer waits for the answer.
    fn abandoned(&self) -> bool {
        match self {
            Reply::Async(tx) => tx.is_closed(),
            Reply::Blocking(_) => false,
        }
    }

    fn send(self, outcome: Outcome) {
        // A caller that went away (its request was cancelled) needs no answer; the
        // check-in stays stored and the device's next check-in learns its sequence.
        match self {
            Reply::Async(tx) => drop(tx.send(outcome)),
            Reply::Blocking(tx) => drop(tx.send(outcome)),
        }
    }
}

struct Job {
    check_in: CheckIn,
    now: UnixTime,
    reply: Reply,
}

/// The writer thread and the way to it; dropping it stops the thread once the
/// check-ins already sent are written.
pub struct Writer {
    jobs: Option<mpsc::SyncSender<Job>>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer").finish_non_exhaustive()
    }
}

fn gone() -> StoreError {
    StoreError::Damaged {
        what: "the check-in writer".into(),
        reason: "it stopped (the store is closing); retry".into(),
    }
}

impl Writer {
    /// Starts the writer on `conn`, which other writers share through its lock.
    pub(crate) fn start(conn: Arc<Mutex<Connection>>) -> Result<Self, std::io::Error> {
        let (jobs, queue) = mpsc::sync_channel(QUEUE_LIMIT);
        let thread = std::thread::Builder::new()
            .name("check-in writer".into())
            .spawn(move || write_until_closed(&conn, &queue))?;
        Ok(Self {
            jobs: Some(jobs),
            thread: Some(thread),
        })
    }

    fn send(&self, job: Job) -> Result<(), StoreError> {
        let jobs = self.jobs.as_ref().ok_or_else(gone)?;
        jobs.try_send(job).map_err(|e| match e {
            mpsc::TrySendError::Full(_) => StoreError::Busy {
                what: format!("{QUEUE_LIMIT} check-ins are waiting to be written"),
            },
            mpsc::TrySendError::Disconnected(_) => gone(),
        })
    }

    /// Records a check-in, blocking until its group committed.
    pub(crate) fn check_in(&self, c: &CheckIn, now: UnixTime) -> Result<CheckInRecord, StoreError> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.send(Job {
            check_in: c.clone(),
            now,
            reply: Reply::Blocking(tx),
        })?;
        rx.recv().map_err(|_| gone())?
    }

    /// Records a check-in; the future ends when its group committed.
    pub(crate) fn submit(
        &self,
        check_in: CheckIn,
        now: UnixTime,
    ) -> impl std::future::Future<Output = Result<CheckInRecord, StoreError>> + Send + 'static {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let sent = self.send(Job {
            check_in,
            now,
            reply: Reply::Async(tx),
        });
        async move {
            sent?;
            rx.await.map_err(|_| gone())?
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        drop(self.jobs.take());
        if let Some(t) = self.thread.take() {
            // The thread ends once the channel is empty and closed; it does not panic
            // (a failed write is an answer), so there is nothing to report here.
            let _ = t.join();
        }
    }
}

fn lock(m: &Mutex<Connection>) -> std::sync::MutexGuard<'_, Connection> {
    // A panic while holding the lock left no transaction open (rusqlite rolls back on
    // drop), so the connection is still sound.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn write_until_closed(conn: &Mutex<Connection>, queue: &mpsc::Receiver<Job>) {
    // Blocks only when nothing waits; then takes whatever arrived meanwhile.
    while let Ok(first) = queue.recv() {
        let mut group = vec![first];
        while group.len() < GROUP_LIMIT {
            match queue.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        // A caller that gave up (its request was cancelled or timed out) is not
        // written for: it retries, and its reports come again.
        group.retain(|job| !job.reply.abandoned());
        if group.is_empty() {
            continue;
        }
        answer_group(
            group,
            |group| {
                let mut conn = lock(conn);
                let mut outcomes = write_group(&mut conn, group);
                attach_decision_inputs(&conn, group, &mut outcomes);
                outcomes
            },
            |job| write_alone(&mut lock(conn), job),
        );
    }
}

type Outcome = Result<CheckInRecord, StoreError>;

/// Answers every check-in of `group` with what `work` made of it. A panic in `work`
/// (a bug) sends each check-in of the group to `alone` (its own transaction, its own
/// panic guard), so one device's bad data fails only that device, and the writer goes
/// on with the next group: one bad group must not stop every device's check-ins. (A
/// transaction the panic left open was rolled back when it dropped; the lock, if
/// poisoned, is taken over by [`lock`].)
fn answer_group(
    group: Vec<Job>,
    work: impl FnOnce(&[Job]) -> Vec<Outcome>,
    alone: impl FnMut(&Job) -> Outcome,
) {
    let done = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(&group)));
    let outcomes = match done {
        Ok(outcomes) if outcomes.len() == group.len() => outcomes,
        _ => {
            tracing::error!(
                check_ins = group.len(),
                "writing a check-in group panicked; each is written alone"
            );
            let mut alone = alone;
            group
                .iter()
                .map(|job| {
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| alone(job)))
                        .unwrap_or_else(|_| Err(group_failed(job)))
                })
                .collect()
        }
    };
    for (job, outcome) in group.into_iter().zip(outcomes) {
        job.reply.send(outcome);
    }
}

/// Why a group's transaction did not commit.
enum GroupFailed {
    /// One of its check-ins failed: each is written again alone.
    CheckIn,
    /// The transaction itself (BEGIN or COMMIT: the database busy past its timeout, an
    /// I/O error): alone they would fail the same way, one timeout each.
    Transaction(StoreError),
}

fn write_group(conn: &mut Connection, group: &[Job]) -> Vec<Outcome> {
    let doing = "recording a check-in";
    // Each check-in's outcome; a refused admission writes nothing, so it is an outcome
    // of its own and the others stay in the transaction.
    let mut one_transaction = |items: &[Job]| {
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| GroupFailed::Transaction(StoreError::sql(doing)(e)))?;
        let mut outcomes = Vec::with_capacity(items.len());
        let mut failed = None;
        for job in items {
            match check_in_tx(&tx, &job.check_in, job.now) {
                Ok(record) => outcomes.push(Ok(record)),
                Err(refused @ StoreError::NotAdmitted { .. }) => outcomes.push(Err(refused)),
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        if let Some(e) = failed {
            // Only one check-in: its own error is its answer.
            return match items.len() {
                1 => Ok(vec![Err(e)]),
                _ => Err(GroupFailed::CheckIn),
            };
        }
        tx.commit()
            .map_err(|e| GroupFailed::Transaction(StoreError::sql(doing)(e)))?;
        Ok(outcomes)
    };
    match one_transaction(group) {
        Ok(outcomes) => outcomes,
        Err(GroupFailed::Transaction(e)) => {
            tracing::error!(error = %e, check_ins = group.len(), "a check-in group's transaction failed");
            group.iter().map(|job| Err(group_failed(job))).collect()
        }
        // One of them failed and took the group's transaction with it: write each
        // alone, so only the failing one is refused.
        Err(GroupFailed::CheckIn) => group.iter().map(|job| write_alone(conn, job)).collect(),
    }
}

/// One check-in in a transaction of its own.
fn write_alone(conn: &mut Connection, job: &Job) -> Outcome {
    write_group(conn, std::slice::from_ref(job))
        .pop()
        .unwrap_or_else(|| Err(group_failed(job)))
}

fn group_failed(job: &Job) -> StoreError {
    StoreError::Damaged {
        what: format!("the check-in of {}", job.check_in.device),
        reason: "the group it was written with failed; retry".into(),
    }
}

/// Reads the decision's inputs once per board and channel of the group, after its
/// commit (so the stats count the group's own reports). A read that fails leaves the
/// record without them; the caller then reads them itself.
fn attach_decision_inputs(conn: &Connection, group: &[Job], outcomes: &mut [Outcome]) {
    let mut read: HashMap<(&str, &str), Option<Arc<DecisionInputs>>> = HashMap::new();
    for (job, outcome) in group.iter().zip(outcomes.iter_mut()) {
        let Ok(record) = outcome else { continue };
        let key = (job.check_in.board.as_str(), job.check_in.channel.as_str());
        let inputs = read
            .entry(key)
            .or_insert_with(|| match decision_reads(conn, key.0, key.1) {
                Ok(inputs) => Some(Arc::new(inputs)),
                Err(e) => {
                    tracing::warn!(error = %e, "reading the decision's inputs after a group failed; each caller reads them");
                    None
                }
            });
        record.inputs = inputs.clone();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(device: &str) -> (Job, mpsc::Receiver<Outcome>) {
        let (tx, rx) = mpsc::sync_channel(1);
        let check_in = crate::CheckIn {
            device: device.into(),
            board: "pi".into(),
            version: semver::Version::new(1, 0, 0),
            channel: "stable".into(),
            labels: Default::default(),
            slots: vec![],
            health: crate::HealthReport {
                state: crate::HealthState::Healthy,
                failing: vec![],
            },
            reports: vec![],
            admission: crate::Admission::Open,
        };
        let job = Job {
            check_in,
            now: UnixTime(1),
            reply: Reply::Blocking(tx),
        };
        (job, rx)
    }

    fn record_of(id: &str) -> CheckInRecord {
        CheckInRecord {
            facts: skerry_rollout::DeviceFacts {
                seed: skerry_rollout::WaveSeed::of(id),
                id: id.into(),
                board: "pi".into(),
                channel: "stable".into(),
                labels: Default::default(),
                version: semver::Version::new(1, 0, 0),
                pin: None,
                rolled_back_from: Default::default(),
            },
            acknowledged: 0,
            inputs: None,
        }
    }

    #[test]
    fn a_panicking_group_fails_only_the_check_in_that_panics_alone() {
        let (a, ra) = job("a");
        let (b, rb) = job("b");
        // The group panics; alone, "a" panics again and "b" is written.
        answer_group(
            vec![a, b],
            |_| panic!("a bug while writing"),
            |job| match job.check_in.device.as_str() {
                "a" => panic!("a's data trips the bug"),
                id => Ok(record_of(id)),
            },
        );
        match ra.try_recv() {
            Ok(Err(StoreError::Damaged { what, reason })) => {
                assert!(
                    what.contains('a') && reason.contains("retry"),
                    "{what}: {reason}"
                );
            }
            other => panic!("a: {other:?}"),
        }
        assert_eq!(rb.try_recv().unwrap().unwrap().facts.id, "b");
    }

    /// While the writer cannot get the connection, check-ins beyond the queue's bound
    /// are refused as busy at once; the ones taken are all written once it can.
    #[test]
    fn a_full_queue_refuses_check_ins_as_busy() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(crate::SqliteStore::open(&dir.path().join("fleet.db")).unwrap());
        let held = store.lock();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let sent: Vec<_> = (0..QUEUE_LIMIT + GROUP_LIMIT + 8)
            .map(|n| {
                let (job, _) = job(&format!("d{n}"));
                crate::FleetStore::check_in_async(Arc::clone(&store), job.check_in, UnixTime(1))
            })
            .collect();
        drop(held);
        let outcomes: Vec<Outcome> = rt.block_on(async {
            let mut out = Vec::new();
            for f in sent {
                out.push(f.await);
            }
            out
        });
        let busy = outcomes
            .iter()
            .filter(|o| matches!(o, Err(StoreError::Busy { .. })))
            .count();
        let written = outcomes.iter().filter(|o| o.is_ok()).count();
        assert!(busy >= 8, "{busy} refused as busy");
        assert_eq!(
            busy + written,
            outcomes.len(),
            "every other one was written"
        );
    }
}
