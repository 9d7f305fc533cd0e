//! The file log when its storage fails during a compaction: a write that could be
//! made durable is reported as done (a compaction that fails before its rename falls
//! back to appending), appends afterwards go to the file the log's name points to, and
//! writes are refused when the log cannot know which file is durable.

mod common;

use std::ffi::OsStr;
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use common::{setting, Setting};
use skerry_medium::{Directory, HostDir, MediumError};
use skerry_runtime::{
    Backend, BackendError, Durability, FileLog, PersistedResource, Resource, Selector, Sensitivity,
    State, StateOptions,
};

/// The host's directory, with `sync_dir` failing while `failing_syncs` is above zero.
#[derive(Debug, Clone)]
struct FlakyDir {
    host: HostDir,
    failing_syncs: Arc<AtomicU32>,
}

impl Directory for FlakyDir {
    fn path(&self) -> &Path {
        self.host.path()
    }
    fn len(&self, name: &OsStr) -> Result<u64, MediumError> {
        self.host.len(name)
    }
    fn read_at(&self, name: &OsStr, offset: u64, len: usize) -> Result<Vec<u8>, MediumError> {
        self.host.read_at(name, offset, len)
    }
    fn write_at(&mut self, name: &OsStr, offset: u64, data: &[u8]) -> Result<(), MediumError> {
        self.host.write_at(name, offset, data)
    }
    fn write_new(&mut self, name: &OsStr, like: &OsStr, data: &[u8]) -> Result<(), MediumError> {
        self.host.write_new(name, like, data)
    }
    fn set_len(&mut self, name: &OsStr, len: u64) -> Result<(), MediumError> {
        self.host.set_len(name, len)
    }
    fn sync_file(&mut self, name: &OsStr) -> Result<(), MediumError> {
        self.host.sync_file(name)
    }
    fn rename(&mut self, from: &OsStr, to: &OsStr) -> Result<(), MediumError> {
        self.host.rename(from, to)
    }
    fn remove(&mut self, name: &OsStr) -> Result<(), MediumError> {
        self.host.remove(name)
    }
    fn sync_dir(&mut self) -> Result<(), MediumError> {
        let left = self.failing_syncs.load(Ordering::SeqCst);
        if left > 0 {
            self.failing_syncs.store(left - 1, Ordering::SeqCst);
            return Err(MediumError::io("sync the directory", self.host.path())(
                std::io::Error::other("injected: the card did not answer"),
            ));
        }
        self.host.sync_dir()
    }
}

fn record(id: &str, value: u64) -> PersistedResource {
    let mut resource = Resource::new(id, setting(value));
    resource.metadata.version = skerry_runtime::Version(value + 1);
    PersistedResource {
        metadata: resource.metadata,
        sensitivity: Sensitivity::Public,
        spec: serde_json::to_value(setting(value)).expect("json"),
    }
}

fn values(dir: &Path) -> Vec<(String, u64)> {
    let state = State::open_persistent(dir).expect("the log reopens");
    state
        .list::<Setting>(&Selector::all())
        .expect("lists")
        .into_iter()
        .map(|r| (r.metadata.id.to_string(), r.spec.value))
        .collect()
}

/// Writes `hot` until the log compacts; returns the value of the write that did
/// (whose compaction met the failing directory sync) and how that write ended.
fn write_until_compaction(
    log: &mut FileLog<FlakyDir>,
    syncs: &AtomicU32,
) -> (u64, Result<(), BackendError>) {
    let armed = syncs.load(Ordering::SeqCst);
    for value in 0..10_000 {
        let result = log.put(&record("hot", value));
        if syncs.load(Ordering::SeqCst) < armed {
            return (value, result);
        }
        result.expect("a write before the compaction succeeds");
    }
    panic!("the log never compacted");
}

#[test]
fn a_failed_compaction_does_not_fail_the_durable_write() {
    let dir = tempfile::tempdir().expect("temp dir");
    // A directory where the temp file must go: the compaction cannot even start.
    std::fs::create_dir(dir.path().join("state.log.tmp")).expect("blocker");
    let log = FileLog::open_with(dir.path(), Durability::Fsync, 4 * 1024);
    // Opening removes a leftover temp *file*; a directory is refused, so open first
    // without it, then put it in the way.
    assert!(
        log.is_err(),
        "a directory named like the temp file is refused"
    );
    std::fs::remove_dir(dir.path().join("state.log.tmp")).expect("unblock");
    let log = FileLog::open_with(dir.path(), Durability::Fsync, 4 * 1024).expect("opens");
    std::fs::create_dir(dir.path().join("state.log.tmp")).expect("blocker");
    let state = State::with_backend(Box::new(log), StateOptions::default()).expect("state");
    state
        .create(Resource::new("hot", setting(0)))
        .expect("create");
    for value in 1..=100 {
        let mut hot = state.get::<Setting>("hot").expect("hot");
        hot.spec = setting(value);
        state
            .update(hot)
            .expect("every write is durable even though compaction fails");
    }
    assert_eq!(
        state.get::<Setting>("hot").expect("hot").spec.value,
        100,
        "memory has every write"
    );
    let size = std::fs::metadata(dir.path().join("state.log"))
        .expect("log")
        .len();
    assert!(size > 8 * 1024, "the log could not compact ({size} bytes)");
    drop(state);
    std::fs::remove_dir(dir.path().join("state.log.tmp")).expect("unblock");
    assert_eq!(values(dir.path()), [("hot".to_owned(), 100)]);
}

#[test]
fn after_a_compaction_whose_directory_sync_failed_once_appends_reach_the_new_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let syncs = Arc::new(AtomicU32::new(0));
    let flaky = FlakyDir {
        host: HostDir::new(dir.path()),
        failing_syncs: syncs.clone(),
    };
    let mut log = FileLog::open_in(flaky, Durability::Fsync, 4 * 1024).expect("opens");
    log.put(&record("cold", 7)).expect("write");
    syncs.store(1, Ordering::SeqCst);
    let (compacted_at, result) = write_until_compaction(&mut log, &syncs);
    result.expect("the retried directory sync made the compacting write durable");
    assert!(
        log.compaction_failure().is_some(),
        "the failure is reported"
    );
    for value in compacted_at + 1..compacted_at + 6 {
        log.put(&record("hot", value))
            .expect("writes go on after the retried sync");
    }
    drop(log);
    assert_eq!(
        values(dir.path()),
        [("cold".to_owned(), 7), ("hot".to_owned(), compacted_at + 5)]
    );
}

#[test]
fn a_compaction_that_cannot_sync_its_directory_stops_further_writes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let syncs = Arc::new(AtomicU32::new(0));
    let flaky = FlakyDir {
        host: HostDir::new(dir.path()),
        failing_syncs: syncs.clone(),
    };
    let mut log = FileLog::open_in(flaky, Durability::Fsync, 4 * 1024).expect("opens");
    syncs.store(2, Ordering::SeqCst);
    let (compacted_at, result) = write_until_compaction(&mut log, &syncs);
    assert!(
        result.is_err(),
        "a write whose compaction may not be durable is not reported as done"
    );
    let refused = log.put(&record("hot", compacted_at + 1));
    assert!(
        matches!(refused, Err(BackendError::Poisoned { .. })),
        "{refused:?}"
    );
    drop(log);
    // The host kept the rename, so the write shows after reopening; on a power cut it
    // could be lost, which is why it was not reported as done.
    assert_eq!(values(dir.path()), [("hot".to_owned(), compacted_at)]);
}
