//! A write to a persistent type that is stuck in its fsync holds no lock a reader
//! needs: readers and writers of other kinds (the watchdog's feed among them) go on,
//! and readers of the kind being written see it as it was before the write.
//!
//! The backend here blocks inside `put` until the test lets it go, so the test knows
//! the fsync is in progress while it reads; nothing is timed.

mod common;

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use common::{setting, Setting, StageA, StageB};
use skerry_runtime::{
    Backend, BackendError, PersistedResource, Resource, ResourceKey, Selector, State, StateOptions,
    WatchEvent,
};

/// A backend whose `put` announces itself and then waits for a release.
#[derive(Debug)]
struct GatedDisk {
    entered: mpsc::Sender<()>,
    release: Arc<Mutex<mpsc::Receiver<()>>>,
}

impl Backend for GatedDisk {
    fn load(&mut self) -> Result<Vec<PersistedResource>, BackendError> {
        Ok(Vec::new())
    }

    fn put(&mut self, _record: &PersistedResource) -> Result<(), BackendError> {
        let _ = self.entered.send(());
        let _ = self
            .release
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .recv();
        Ok(())
    }

    fn remove(&mut self, _key: &ResourceKey) -> Result<(), BackendError> {
        Ok(())
    }
}

/// How long to wait before declaring a reader blocked: far beyond any scheduling
/// delay, and only reached when the test is failing.
const BLOCKED: Duration = Duration::from_secs(20);

#[test]
fn readers_finish_while_an_fsync_is_stuck() {
    let (entered_tx, entered) = mpsc::channel();
    let (release, release_rx) = mpsc::channel();
    let disk = GatedDisk {
        entered: entered_tx,
        release: Arc::new(Mutex::new(release_rx)),
    };
    let state = State::with_backend(Box::new(disk), StateOptions::default()).expect("opens");
    state
        .create(Resource::new("feed", StageA(0)))
        .expect("ephemeral kind");

    let writer = {
        let state = state.clone();
        thread::spawn(move || state.create(Resource::new("persisted", setting(1))))
    };
    entered
        .recv_timeout(BLOCKED)
        .expect("the persistent write reached the disk");

    let (done_tx, done) = mpsc::channel();
    let reader = {
        let state = state.clone();
        thread::spawn(move || {
            let before = state.get::<StageA>("feed").expect("read another kind");
            let listed = state.list::<StageA>(&Selector::all()).expect("list");
            // The watchdog's feed: an ephemeral write while the fsync is stuck.
            let mut feed = before.clone();
            feed.spec = StageA(before.spec.0 + 1);
            state.update(feed).expect("feed the watchdog");
            state
                .apply_owned("fresh", None, StageB(1))
                .expect("a kind created meanwhile");
            let mut watcher = state.watch_kind::<StageA>(None).expect("watch");
            let snapshot = std::iter::from_fn(|| watcher.try_next().ok().flatten()).count();
            let _ = state.kinds();
            // Readers of the kind being written see it as it was before the write.
            let pending = state.get::<Setting>("persisted").is_err()
                && state
                    .list::<Setting>(&Selector::all())
                    .is_ok_and(|l| l.is_empty());
            let mut settings = state.watch_kind::<Setting>(None).expect("watch");
            let bootstrapped = matches!(
                settings.try_next(),
                Ok(Some(WatchEvent::Bootstrapped { .. }))
            );
            let _ = done_tx.send((listed.len(), snapshot, pending && bootstrapped));
        })
    };
    let outcome = done.recv_timeout(BLOCKED);
    assert!(
        !writer.is_finished(),
        "the persistent write was still inside its fsync during the reads"
    );
    let _ = release.send(());
    writer
        .join()
        .expect("writer thread")
        .expect("persistent write");
    reader.join().expect("reader thread");
    let (listed, snapshot, old_view) = outcome.expect("reads completed while the fsync was stuck");
    assert_eq!((listed, snapshot), (1, 2));
    assert!(
        old_view,
        "readers of the written kind saw its state before the write"
    );
    assert_eq!(
        state
            .get::<Setting>("persisted")
            .expect("durable, then visible")
            .spec,
        setting(1)
    );
    assert_eq!(state.get::<StageA>("feed").expect("fed").spec, StageA(1));
}
