//! One task per controller (plus a short-lived watch per output the controller is
//! waiting to destroy).
//!
//! The runner watches its inputs itself and turns events into a coalesced set of
//! dirty ids: however many events arrive while a reconcile runs, the next run sees
//! them as one set. The runner reconciles on a wake, on the timer the last run asked for,
//! or on an explicit trigger. A reconcile that errors or panics is recorded in the
//! controller's status, and the controller is restarted (a full resync) after an
//! exponential backoff.

use std::collections::{BTreeSet, HashMap};
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::FutureExt;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::context::{PendingTeardowns, ReconcileContext, ReleaseWatch};
use super::runtime::RuntimeOptions;
use super::status::{ControllerStatus, ControllerStatusSpec, STATUS_OWNER};
use super::{Controller, Input, Output, Requeue};
use crate::error::{StateError, WatchError};
use crate::resource::ResourceKey;
use crate::state::{State, WatchEvent, Watcher};

/// Everything a runner needs, handed over by [`Runtime::start`](super::Runtime::start).
pub(crate) struct RunnerEnv {
    pub state: State,
    pub name: Arc<str>,
    pub inputs: Arc<[Input]>,
    pub outputs: Arc<[Output]>,
    pub options: RuntimeOptions,
    pub status: Arc<Mutex<ControllerStatus>>,
    pub trigger: Arc<Trigger>,
    pub shutdown: watch::Receiver<bool>,
    pub activity: super::activity::Activity,
}

#[derive(Debug, Default)]
struct Dirty {
    ids: HashMap<&'static str, BTreeSet<Arc<str>>>,
    full: bool,
    teardowns: bool,
}

impl Dirty {
    fn merge(&mut self, other: Dirty) {
        for (type_name, ids) in other.ids {
            self.ids.entry(type_name).or_default().extend(ids);
        }
        self.full |= other.full;
        self.teardowns |= other.teardowns;
    }
}

/// Reasons to reconcile from outside the runner (triggers, released teardowns), and
/// the wake-up for it.
#[derive(Debug, Default)]
pub(crate) struct Trigger {
    dirty: Mutex<Dirty>,
    notify: Notify,
}

impl Trigger {
    fn with_dirty(&self, f: impl FnOnce(&mut Dirty)) {
        f(&mut self.dirty.lock().unwrap_or_else(|p| p.into_inner()));
        self.notify.notify_one();
    }

    pub(crate) fn request_full(&self) {
        self.with_dirty(|d| d.full = true);
    }

    fn take(&self) -> Dirty {
        std::mem::take(&mut *self.dirty.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// Starts the runner and its forwarders; watches are opened before this returns, so
/// no change after start-up is missed.
pub(crate) fn spawn<C: Controller>(controller: C, env: RunnerEnv) -> Vec<JoinHandle<()>> {
    let pending: PendingTeardowns = Arc::default();
    // Watches open before this returns, so no change after start-up is missed.
    let watches = InputWatches::open(&env.state, &env.inputs);
    vec![tokio::spawn(run(controller, env, pending, watches))]
}

fn open(state: &State, namespace: &str, type_name: &str) -> Result<Watcher, WatchError> {
    state.watch_raw(namespace, type_name, None, Some(state.bookmark()))
}

/// Resolves once shutdown is requested (or the runtime handle is gone).
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    loop {
        if *shutdown.borrow_and_update() {
            return;
        }
        if shutdown.changed().await.is_err() {
            return;
        }
    }
}

/// The runner's watches on its input kinds.
struct InputWatches {
    state: State,
    watches: Vec<(Input, Option<Watcher>)>,
}

impl InputWatches {
    fn open(state: &State, inputs: &[Input]) -> Self {
        let watches = inputs
            .iter()
            .map(|input| (*input, open(state, input.namespace, input.type_name).ok()))
            .collect();
        InputWatches {
            state: state.clone(),
            watches,
        }
    }

    /// Waits for an event on any input and records it.
    async fn changed(&mut self, dirty: &mut Dirty) {
        let (index, result) = {
            let waiting: Vec<_> = self
                .watches
                .iter_mut()
                .enumerate()
                .filter_map(|(i, (_, w))| {
                    w.as_mut()
                        .map(|w| Box::pin(async move { (i, w.next().await) }))
                })
                .collect();
            if waiting.is_empty() {
                return std::future::pending().await;
            }
            futures_util::future::select_all(waiting).await.0
        };
        self.record(index, result, dirty);
    }

    /// Records every event that is ready now.
    fn drain(&mut self, dirty: &mut Dirty) {
        for index in 0..self.watches.len() {
            while let Some(watcher) = self.watches[index].1.as_mut() {
                match watcher.try_next() {
                    Ok(Some(event)) => self.record(index, Ok(event), dirty),
                    Ok(None) => break,
                    Err(e) => {
                        self.record(index, Err(e), dirty);
                        break;
                    }
                }
            }
        }
    }

    fn record(&mut self, index: usize, result: Result<WatchEvent, WatchError>, dirty: &mut Dirty) {
        let (input, watcher) = &mut self.watches[index];
        match result {
            Ok(event) => {
                if let Some(resource) = event.resource() {
                    dirty
                        .ids
                        .entry(input.type_name)
                        .or_default()
                        .insert(resource.metadata.id.clone());
                }
            }
            Err(WatchError::Closed) => *watcher = None,
            Err(_) => {
                // Fell behind the kind's history: start from now and look at everything.
                *watcher = open(&self.state, input.namespace, input.type_name).ok();
                dirty.full = true;
            }
        }
    }
}

/// Wakes the runner once the output `key`, which it is tearing down, has no
/// finalizers left (or is gone).
async fn await_release(
    state: State,
    key: ResourceKey,
    trigger: Arc<Trigger>,
    mut shutdown: watch::Receiver<bool>,
) {
    let Ok(mut watcher) = state.watch_raw(&key.namespace, &key.type_name, Some(&key.id), None)
    else {
        trigger.with_dirty(|d| d.teardowns = true);
        return;
    };
    loop {
        let event = tokio::select! {
            event = watcher.next() => event,
            () = stopped(&mut shutdown) => return,
        };
        let released = match &event {
            Ok(WatchEvent::Destroyed { .. }) | Err(_) => true,
            Ok(WatchEvent::Bootstrapped { .. }) => state
                .get_raw(&key.namespace, &key.type_name, &key.id)
                .is_err(),
            Ok(event) => event
                .resource()
                .is_some_and(|r| r.metadata.finalizers.is_empty()),
        };
        if released {
            trigger.with_dirty(|d| d.teardowns = true);
            return;
        }
    }
}

/// Destroys pending outputs whose finalizers are gone; true if any finished.
fn finish_teardowns(state: &State, owner: &str, pending: &PendingTeardowns) -> bool {
    let keys: Vec<_> = pending
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .cloned()
        .collect();
    let mut finished = false;
    for key in keys {
        let done = match state.destroy_raw(&key.namespace, &key.type_name, &key.id, Some(owner)) {
            Ok(()) | Err(StateError::NotFound { .. }) => true,
            // Still held, or taken over: keep waiting / stop tracking respectively.
            Err(StateError::FinalizersPending { .. }) => false,
            Err(_) => true,
        };
        if done {
            pending
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&key);
            finished = true;
        }
    }
    finished
}

async fn run<C: Controller>(
    mut controller: C,
    env: RunnerEnv,
    pending: PendingTeardowns,
    mut watches: InputWatches,
) {
    let mut shutdown = env.shutdown.clone();
    let watch_release: ReleaseWatch = {
        let (state, trigger, shutdown) =
            (env.state.clone(), env.trigger.clone(), env.shutdown.clone());
        Arc::new(move |key| {
            tokio::spawn(await_release(
                state.clone(),
                key,
                trigger.clone(),
                shutdown.clone(),
            ));
        })
    };
    let mut run_now = true;
    let mut full = true;
    let mut timer: Option<Instant> = None;
    let mut woken = Dirty::default();
    loop {
        if !run_now {
            let deadline = timer;
            tokio::select! {
                biased;
                () = stopped(&mut shutdown) => return,
                () = env.trigger.notify.notified() => {}
                () = watches.changed(&mut woken) => {}
                () = sleep_until(deadline) => {
                    full = true;
                    timer = None;
                }
            }
        }
        run_now = false;
        let mut dirty = env.trigger.take();
        dirty.merge(std::mem::take(&mut woken));
        // Coalesce: everything that arrived while the last reconcile ran is one run.
        watches.drain(&mut dirty);
        full |= dirty.full;
        if dirty.teardowns && finish_teardowns(&env.state, &env.name, &pending) {
            full = true;
        }
        if !full && dirty.ids.is_empty() {
            continue;
        }
        let changed = if full { None } else { Some(dirty.ids) };
        full = false;
        let mut ctx = ReconcileContext::new(
            env.state.clone(),
            env.name.clone(),
            env.inputs.clone(),
            env.outputs.clone(),
            changed,
            pending.clone(),
            watch_release.clone(),
        );
        let started = std::time::Instant::now();
        env.activity.started(&env.name);
        let result = AssertUnwindSafe(controller.reconcile(&mut ctx))
            .catch_unwind()
            .await;
        env.activity.finished(&env.name);
        let elapsed = started.elapsed();
        let outcome = match result {
            Ok(Ok(requeue)) => Ok(requeue),
            Ok(Err(error)) => Err((error_chain(&*error), false)),
            Err(panic) => Err((format!("panicked: {}", panic_message(&*panic)), true)),
        };
        match outcome {
            Ok(requeue) => {
                record_success(&env, elapsed);
                timer = match requeue {
                    Requeue::OnChange => None,
                    Requeue::Now => Some(Instant::now()),
                    Requeue::After(delay) => Some(Instant::now() + delay),
                };
            }
            Err((message, panicked)) => {
                let backoff = record_failure(&env, elapsed, message, panicked);
                tokio::select! {
                    biased;
                    () = stopped(&mut shutdown) => return,
                    () = tokio::time::sleep(backoff) => {}
                }
                env.status.lock().unwrap_or_else(|p| p.into_inner()).backoff = None;
                run_now = true;
                full = true;
            }
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

fn record_success(env: &RunnerEnv, elapsed: Duration) {
    let recovered = {
        let mut status = env.status.lock().unwrap_or_else(|p| p.into_inner());
        status.reconciles += 1;
        status.last_duration = Some(elapsed);
        let recovered = status.consecutive_failures > 0;
        status.consecutive_failures = 0;
        status.last_error = None;
        recovered.then(|| status.failures)
    };
    if let Some(failures) = recovered {
        publish(env, None, 0, failures);
    }
}

fn record_failure(env: &RunnerEnv, elapsed: Duration, message: String, panicked: bool) -> Duration {
    let (backoff, consecutive, failures) = {
        let mut status = env.status.lock().unwrap_or_else(|p| p.into_inner());
        status.reconciles += 1;
        status.failures += 1;
        status.panics += u64::from(panicked);
        status.consecutive_failures = status.consecutive_failures.saturating_add(1);
        status.last_duration = Some(elapsed);
        status.last_error = Some(message.clone());
        let backoff = backoff_for(&env.options, status.consecutive_failures);
        status.backoff = Some(backoff);
        (backoff, status.consecutive_failures, status.failures)
    };
    publish(env, Some(message), consecutive, failures);
    backoff
}

/// Writes the controller's status resource. Best effort: it is in memory and owned
/// by the runtime alone, so it only fails if someone else took the id over.
fn publish(env: &RunnerEnv, last_error: Option<String>, consecutive_failures: u32, failures: u64) {
    let spec = ControllerStatusSpec {
        last_error,
        consecutive_failures,
        failures,
    };
    let _ = env.state.apply_owned(&env.name, Some(STATUS_OWNER), spec);
}

/// The wait before restarting after the `consecutive`-th failure in a row.
fn backoff_for(options: &RuntimeOptions, consecutive: u32) -> Duration {
    let exponent = consecutive.saturating_sub(1).min(20);
    options
        .backoff_base
        .saturating_mul(1 << exponent)
        .min(options.backoff_max)
}

fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "a non-string panic payload".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let options = RuntimeOptions {
            backoff_base: Duration::from_millis(100),
            backoff_max: Duration::from_secs(1),
        };
        let waits: Vec<u128> = (1..=6)
            .map(|n| backoff_for(&options, n).as_millis())
            .collect();
        assert_eq!(waits, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(backoff_for(&options, u32::MAX), Duration::from_secs(1));
    }

    #[derive(Debug, thiserror::Error)]
    #[error("reading the config")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn errors_show_their_whole_chain_and_panics_their_message() {
        let error = Outer(std::io::Error::other("disk on fire"));
        assert_eq!(error_chain(&error), "reading the config: disk on fire");
        let payload: Box<dyn std::any::Any + Send> = Box::new(String::from("index out of range"));
        assert_eq!(panic_message(&*payload), "index out of range");
        let payload: Box<dyn std::any::Any + Send> = Box::new(7_u8);
        assert_eq!(panic_message(&*payload), "a non-string panic payload");
    }

    #[test]
    fn dirty_sets_merge() {
        let mut a = Dirty::default();
        a.ids.entry("T").or_default().insert(Arc::from("x"));
        let mut b = Dirty::default();
        b.ids.entry("T").or_default().insert(Arc::from("y"));
        b.teardowns = true;
        a.merge(b);
        assert_eq!(a.ids["T"].len(), 2);
        assert!(a.teardowns && !a.full);
    }
}
