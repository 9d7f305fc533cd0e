//! One conformance suite for the state, run against every backend. For a backend
//! that persists, each case also reopens the backend and compares what it reads back
//! with the live state.

mod common;

use std::sync::Arc;

use common::{setting, Setting};
use skerry_runtime::{
    Bookmark, FileLog, MemoryBackend, Phase, RawResource, Resource, Selector, State, StateError,
    StateOptions, Version, WatchError, WatchEvent, Watcher,
};
use tempfile::TempDir;

/// A state under test, and how to reopen its backend (if it persists).
struct Harness {
    state: State,
    reopen: Option<Box<dyn Fn() -> State>>,
    _dir: Option<TempDir>,
}

impl Harness {
    /// For persistent backends: a fresh state over the same storage must hold exactly
    /// what the live state holds.
    fn check_durable(&self) {
        let Some(reopen) = &self.reopen else { return };
        let reopened = reopen();
        let live = self
            .state
            .list_raw("config", "Settings.test.skerry.dev", &Selector::all());
        let back = reopened.list_raw("config", "Settings.test.skerry.dev", &Selector::all());
        assert_eq!(
            summary(&live),
            summary(&back),
            "reopened state differs from the live one"
        );
    }
}

fn summary(resources: &[Arc<RawResource>]) -> Vec<(String, Version, Phase, Vec<String>, Setting)> {
    resources
        .iter()
        .map(|r| {
            (
                r.metadata.id.to_string(),
                r.metadata.version,
                r.metadata.phase,
                r.metadata.finalizers.clone(),
                (*r.spec::<Setting>().expect("decodes as Setting")).clone(),
            )
        })
        .collect()
}

fn memory(options: StateOptions) -> Harness {
    Harness {
        state: State::with_backend(Box::new(MemoryBackend), options).expect("memory backend opens"),
        reopen: None,
        _dir: None,
    }
}

fn file_log(options: StateOptions) -> Harness {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().to_path_buf();
    let log = FileLog::open(&path).expect("log opens");
    Harness {
        state: State::with_backend(Box::new(log), options).expect("state opens"),
        reopen: Some(Box::new(move || {
            State::open_persistent(&path).expect("log reopens")
        })),
        _dir: Some(dir),
    }
}

async fn suite(mk: fn(StateOptions) -> Harness) {
    create_get_and_duplicates(mk(StateOptions::default()));
    update_checks_version_and_owner(mk(StateOptions::default()));
    list_filters_by_labels(mk(StateOptions::default()));
    finalizers_hold_destroy(mk(StateOptions::default()));
    watch_one_resource(mk(StateOptions::default())).await;
    watch_kind_snapshot_and_resume(mk(StateOptions::default())).await;
    resume_from_expired_bookmark_fails(mk(StateOptions {
        history_per_kind: 4,
        channel_capacity: 4,
    }))
    .await;
    slow_watcher_catches_up_from_history(mk(StateOptions {
        history_per_kind: 1000,
        channel_capacity: 4,
    }))
    .await;
}

#[tokio::test]
async fn memory_backend_conforms() {
    suite(memory).await;
}

#[tokio::test]
async fn file_log_backend_conforms() {
    suite(file_log).await;
}

fn create_get_and_duplicates(h: Harness) {
    let state = &h.state;
    let missing = state.get::<Setting>("hostname");
    assert!(
        matches!(missing, Err(StateError::NotFound { .. })),
        "{missing:?}"
    );
    let version = state
        .create(Resource::new("hostname", setting(1)).with_label("area", "net"))
        .expect("created");
    assert_eq!(version, Version(1));
    let got = state.get::<Setting>("hostname").expect("stored");
    assert_eq!(got.spec, setting(1));
    assert_eq!(got.metadata.version, Version(1));
    assert_eq!(got.metadata.phase, Phase::Running);
    assert_eq!(&*got.metadata.namespace, "config");
    assert_eq!(
        got.metadata.labels.get("area").map(String::as_str),
        Some("net")
    );
    let again = state.create(Resource::new("hostname", setting(2)));
    assert!(
        matches!(again, Err(StateError::AlreadyExists { .. })),
        "{again:?}"
    );
    assert_eq!(
        state.get::<Setting>("hostname").expect("kept").spec,
        setting(1)
    );
    let empty = state.create(Resource::new("", setting(1)));
    assert!(
        matches!(empty, Err(StateError::EmptyId { .. })),
        "{empty:?}"
    );
    h.check_durable();
}

fn update_checks_version_and_owner(h: Harness) {
    let state = &h.state;
    state
        .create(Resource::new("ntp", setting(1)).with_owner("ntp-ctl"))
        .expect("created");
    let mut current = state.get::<Setting>("ntp").expect("stored");
    let stale = current.clone();
    current.spec = setting(2);
    assert_eq!(
        state.update(current).expect("fresh version accepted"),
        Version(2)
    );

    let mut stale_write = stale;
    stale_write.spec = setting(99);
    match state.update(stale_write) {
        Err(StateError::Conflict {
            expected, actual, ..
        }) => {
            assert_eq!((expected, actual), (Version(1), Version(2)));
        }
        other => panic!("stale update must conflict, got {other:?}"),
    }
    let mut foreign = state.get::<Setting>("ntp").expect("stored");
    foreign.metadata.owner = Some(Arc::from("intruder"));
    foreign.spec = setting(7);
    let refused = state.update(foreign);
    assert!(
        matches!(refused, Err(StateError::OwnerConflict { .. })),
        "{refused:?}"
    );
    let refused = state.destroy::<Setting>("ntp", None);
    assert!(
        matches!(refused, Err(StateError::OwnerConflict { .. })),
        "{refused:?}"
    );
    assert_eq!(state.get::<Setting>("ntp").expect("kept").spec, setting(2));

    let missing = state.update(Resource::new("nope", setting(1)));
    assert!(
        matches!(missing, Err(StateError::NotFound { .. })),
        "{missing:?}"
    );
    h.check_durable();
}

fn list_filters_by_labels(h: Harness) {
    let state = &h.state;
    for (id, zone, tier) in [
        ("a", "north", Some("gold")),
        ("b", "south", None),
        ("c", "north", None),
    ] {
        let mut r = Resource::new(id, setting(1)).with_label("zone", zone);
        if let Some(tier) = tier {
            r = r.with_label("tier", tier);
        }
        state.create(r).expect("created");
    }
    let ids = |sel: Selector| -> Vec<String> {
        state
            .list::<Setting>(&sel)
            .expect("listed")
            .into_iter()
            .map(|r| r.metadata.id.to_string())
            .collect()
    };
    assert_eq!(ids(Selector::all()), ["a", "b", "c"]);
    assert_eq!(ids(Selector::all().equals("zone", "north")), ["a", "c"]);
    assert_eq!(
        ids(Selector::all().equals("zone", "north").absent("tier")),
        ["c"]
    );
    assert_eq!(ids(Selector::all().exists("tier")), ["a"]);
    assert_eq!(ids(Selector::all().not_equals("zone", "north")), ["b"]);
    h.check_durable();
}

fn finalizers_hold_destroy(h: Harness) {
    let state = &h.state;
    state
        .create(Resource::new("disk", setting(1)))
        .expect("created");
    state
        .add_finalizer::<Setting>("disk", "mounts")
        .expect("finalizer added");
    state
        .add_finalizer::<Setting>("disk", "mounts")
        .expect("idempotent");
    assert_eq!(
        state
            .get::<Setting>("disk")
            .expect("stored")
            .metadata
            .finalizers,
        ["mounts"]
    );
    match state.destroy::<Setting>("disk", None) {
        Err(StateError::FinalizersPending { finalizers, .. }) => assert_eq!(finalizers, ["mounts"]),
        other => panic!("destroy with finalizers must be refused, got {other:?}"),
    }
    assert!(
        !state.teardown::<Setting>("disk", None).expect("teardown"),
        "finalizer still held"
    );
    assert_eq!(
        state.get::<Setting>("disk").expect("stored").metadata.phase,
        Phase::TearingDown
    );
    let late = state.add_finalizer::<Setting>("disk", "late");
    assert!(
        matches!(late, Err(StateError::TearingDown { .. })),
        "{late:?}"
    );
    h.check_durable();
    state
        .remove_finalizer::<Setting>("disk", "mounts")
        .expect("released");
    assert!(state
        .teardown::<Setting>("disk", None)
        .expect("teardown again"));
    state.destroy::<Setting>("disk", None).expect("destroyed");
    let gone = state.get::<Setting>("disk");
    assert!(matches!(gone, Err(StateError::NotFound { .. })), "{gone:?}");
    h.check_durable();
}

/// Ids and kinds of events, to compare sequences.
fn describe(event: &WatchEvent) -> String {
    let (what, resource) = match event {
        WatchEvent::Created { resource, .. } => ("created", Some(resource)),
        WatchEvent::Updated { resource, .. } => ("updated", Some(resource)),
        WatchEvent::Destroyed { resource, .. } => ("destroyed", Some(resource)),
        WatchEvent::Bootstrapped { .. } => ("bootstrapped", None),
    };
    match resource {
        Some(r) => format!("{what} {} v{}", r.metadata.id, r.metadata.version),
        None => what.to_owned(),
    }
}

async fn drain(watcher: &mut Watcher) -> Vec<WatchEvent> {
    let mut events = Vec::new();
    while let Some(event) = watcher.try_next().expect("watch healthy") {
        events.push(event);
    }
    events
}

async fn watch_one_resource(h: Harness) {
    let state = &h.state;
    state
        .create(Resource::new("other", setting(0)))
        .expect("created");
    let mut watcher = state.watch::<Setting>("dns").expect("watch opens");
    let first = watcher.next().await.expect("event");
    assert!(
        matches!(first, WatchEvent::Bootstrapped { .. }),
        "absent resource: only Bootstrapped"
    );
    state
        .create(Resource::new("dns", setting(1)))
        .expect("created");
    let mut dns = state.get::<Setting>("dns").expect("stored");
    dns.spec = setting(2);
    state.update(dns).expect("updated");
    state
        .create(Resource::new("noise", setting(0)))
        .expect("created");
    state.destroy::<Setting>("dns", None).expect("destroyed");
    let seen: Vec<_> = drain(&mut watcher).await.iter().map(describe).collect();
    assert_eq!(
        seen,
        ["created dns v1", "updated dns v2", "destroyed dns v2"]
    );
    h.check_durable();
}

async fn watch_kind_snapshot_and_resume(h: Harness) {
    let state = &h.state;
    state
        .create(Resource::new("a", setting(1)))
        .expect("created");
    state
        .create(Resource::new("b", setting(1)))
        .expect("created");
    let mut watcher = state.watch_kind::<Setting>(None).expect("watch opens");
    let snapshot: Vec<_> = drain(&mut watcher).await;
    let described: Vec<_> = snapshot.iter().map(describe).collect();
    assert_eq!(described, ["created a v1", "created b v1", "bootstrapped"]);
    assert_eq!(
        snapshot[0].bookmark(),
        None,
        "snapshot items are not resume points"
    );
    let after_snapshot = snapshot[2]
        .bookmark()
        .expect("bootstrapped carries a bookmark");

    let mut a = state.get::<Setting>("a").expect("stored");
    a.spec = setting(2);
    state.update(a).expect("updated");
    state
        .create(Resource::new("c", setting(1)))
        .expect("created");
    let consumed = watcher.next().await.expect("event");
    assert_eq!(describe(&consumed), "updated a v2");
    let resume_at = consumed.bookmark().expect("live events carry bookmarks");
    drop(watcher);

    state.destroy::<Setting>("b", None).expect("destroyed");
    let mut resumed = state
        .watch_kind::<Setting>(Some(resume_at))
        .expect("resume");
    let rest: Vec<_> = drain(&mut resumed).await.iter().map(describe).collect();
    assert_eq!(
        rest,
        ["created c v1", "destroyed b v1"],
        "exactly the events after the bookmark"
    );

    let mut from_snapshot = state
        .watch_kind::<Setting>(Some(after_snapshot))
        .expect("resume");
    let all: Vec<_> = drain(&mut from_snapshot)
        .await
        .iter()
        .map(describe)
        .collect();
    assert_eq!(all, ["updated a v2", "created c v1", "destroyed b v1"]);

    let future = state.watch_kind::<Setting>(Some(Bookmark {
        epoch: state.epoch(),
        revision: u64::MAX,
    }));
    assert!(
        matches!(future, Err(WatchError::FromTheFuture { .. })),
        "{future:?}"
    );
    h.check_durable();
}

async fn resume_from_expired_bookmark_fails(h: Harness) {
    let state = &h.state;
    state
        .create(Resource::new("x", setting(0)))
        .expect("created");
    let early = state.bookmark();
    for value in 1..=10 {
        let mut x = state.get::<Setting>("x").expect("stored");
        x.spec = setting(value);
        state.update(x).expect("updated");
    }
    let expired = state.watch_kind::<Setting>(Some(early));
    assert!(
        matches!(expired, Err(WatchError::Expired { .. })),
        "{expired:?}"
    );
    let recent = state.watch_kind::<Setting>(Some(Bookmark {
        epoch: state.epoch(),
        revision: state.bookmark().revision - 2,
    }));
    let mut recent = recent.expect("recent bookmark resumes");
    assert_eq!(drain(&mut recent).await.len(), 2);
    h.check_durable();
}

async fn slow_watcher_catches_up_from_history(h: Harness) {
    let state = &h.state;
    let mut watcher = state.watch_kind::<Setting>(None).expect("watch opens");
    for i in 0..50 {
        state
            .create(Resource::new(format!("r{i:02}"), setting(i)))
            .expect("created");
    }
    let events = drain(&mut watcher).await;
    let described: Vec<_> = events.iter().map(describe).collect();
    let mut expected = vec!["bootstrapped".to_owned()];
    expected.extend((0..50).map(|i| format!("created r{i:02} v1")));
    assert_eq!(
        described, expected,
        "a watcher that overflowed its buffer replays, in order, once"
    );
    h.check_durable();
}
