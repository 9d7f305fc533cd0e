//! Bookmarks name the run of the state they came from: after a restart over the same
//! file log, an old bookmark is refused clearly (its history is gone), and a new
//! watch gets the restored resources as its snapshot.

mod common;

use common::{setting, Setting};
use skerry_runtime::{Resource, State, WatchError, WatchEvent, Watcher};

fn describe(event: &WatchEvent) -> String {
    match event {
        WatchEvent::Created { resource, bookmark } => format!(
            "created {} {}",
            resource.metadata.id,
            if bookmark.is_some() {
                "live"
            } else {
                "snapshot"
            }
        ),
        WatchEvent::Updated { resource, .. } => format!("updated {}", resource.metadata.id),
        WatchEvent::Destroyed { resource, .. } => format!("destroyed {}", resource.metadata.id),
        WatchEvent::Bootstrapped { .. } => "bootstrapped".to_owned(),
    }
}

fn ready(watcher: &mut Watcher) -> Vec<WatchEvent> {
    let mut events = Vec::new();
    while let Some(event) = watcher.try_next().expect("watch") {
        events.push(event);
    }
    events
}

#[test]
fn a_bookmark_from_before_a_restart_is_refused_and_restored_resources_bootstrap() {
    let dir = tempfile::tempdir().expect("temp dir");
    let before = {
        let state = State::open_persistent(dir.path()).expect("opens");
        state
            .create(Resource::new("a", setting(1)))
            .expect("created");
        let bookmark = state.bookmark();
        state
            .create(Resource::new("b", setting(2)))
            .expect("created");
        bookmark
    };

    let state = State::open_persistent(dir.path()).expect("reopens");
    assert_ne!(state.epoch(), before.epoch, "a reopened state is a new run");
    assert_eq!(
        state.kinds(),
        [(
            "config".to_owned(),
            "Settings.test.skerry.dev".to_owned(),
            2
        )],
        "restored resources count"
    );
    // Writes after the restart reuse revision numbers the old run handed out: a
    // bookmark compared by revision alone would resume in the wrong place.
    for id in ["c", "d"] {
        state
            .create(Resource::new(id, setting(3)))
            .expect("created");
    }
    assert!(state.bookmark().revision > before.revision);
    let refused = state.watch_kind::<Setting>(Some(before));
    let Err(error) = refused else {
        panic!("an old run's bookmark resumed");
    };
    assert!(
        matches!(error, WatchError::OtherEpoch { bookmark, epoch }
            if bookmark == before && epoch == state.epoch()),
        "{error:?}"
    );
    assert!(
        error.to_string().contains("watch again with a snapshot"),
        "{error}"
    );

    let mut fresh = state.watch_kind::<Setting>(None).expect("snapshot watch");
    let events = ready(&mut fresh);
    assert_eq!(
        events.iter().map(describe).collect::<Vec<_>>(),
        [
            "created a snapshot",
            "created b snapshot",
            "created c snapshot",
            "created d snapshot",
            "bootstrapped"
        ]
    );
    let Some(resume) = events.last().and_then(WatchEvent::bookmark) else {
        panic!("bootstrapped carries a bookmark");
    };
    assert_eq!(resume.epoch, state.epoch());
    assert_eq!(
        state
            .get::<Setting>("a")
            .expect("restored resource decodes")
            .spec,
        setting(1)
    );
    state
        .create(Resource::new("e", setting(5)))
        .expect("created");
    let mut resumed = state
        .watch_kind::<Setting>(Some(resume))
        .expect("this run's bookmark resumes");
    assert_eq!(
        ready(&mut resumed).iter().map(describe).collect::<Vec<_>>(),
        ["created e live"]
    );
}

#[test]
fn a_bookmark_of_another_state_is_refused() {
    let one = State::in_memory();
    let other = State::in_memory();
    one.create(Resource::new("a", setting(1))).expect("created");
    other
        .create(Resource::new("a", setting(1)))
        .expect("created");
    other
        .create(Resource::new("b", setting(1)))
        .expect("created");
    let result = other.watch_kind::<Setting>(Some(one.bookmark()));
    assert!(
        matches!(result, Err(WatchError::OtherEpoch { .. })),
        "{result:?}"
    );
}
