//! A client without the admin role never sees a sensitive resource, through any read
//! path (get, list, watch of a kind, watch of one resource), whether the sensitive
//! type was known before the read, registered only after a watch began, or is known
//! only from disk.

mod common;

use common::{setting, Key, Token};
use skerry_runtime::{
    AccessError, ClientView, Resource, ResourceSpec, Role, Selector, State, WatchError, WatchEvent,
    Watcher,
};

const NON_ADMINS: [Role; 2] = [Role::Reader, Role::Operator];

fn forbidden<T: std::fmt::Debug>(result: Result<T, AccessError>) -> bool {
    matches!(result, Err(AccessError::Forbidden { .. }))
}

/// Every read path of a non-admin is refused for the type.
fn assert_all_reads_refused(state: &State, namespace: &str, type_name: &str, id: &str) {
    for role in NON_ADMINS {
        let view = ClientView::new(state.clone(), role);
        assert!(
            forbidden(view.get(namespace, type_name, id)),
            "{role:?} get"
        );
        assert!(
            forbidden(view.get_json(namespace, type_name, id)),
            "{role:?} get_json"
        );
        assert!(
            forbidden(view.list(namespace, type_name, &Selector::all())),
            "{role:?} list"
        );
        assert!(
            forbidden(view.watch(namespace, type_name, None)),
            "{role:?} watch"
        );
        assert!(
            forbidden(view.watch(namespace, type_name, Some(state.bookmark()))),
            "{role:?} watch from a bookmark"
        );
        assert!(
            forbidden(view.watch_resource(namespace, type_name, id)),
            "{role:?} watch one"
        );
    }
}

/// Drains what a watcher has ready; panics if it yields a resource.
fn assert_never_shows_a_resource(watcher: &mut Watcher, what: &str) {
    loop {
        match watcher.try_next() {
            Ok(Some(WatchEvent::Bootstrapped { .. })) => {}
            Ok(Some(event)) => panic!("{what}: a non-admin saw {event:?}"),
            Ok(None) => return,
            Err(WatchError::Forbidden { .. }) => {
                // Ended for good: later calls keep refusing.
                assert!(
                    matches!(watcher.try_next(), Err(WatchError::Forbidden { .. })),
                    "{what}: the watch ended"
                );
                return;
            }
            Err(other) => panic!("{what}: unexpected {other}"),
        }
    }
}

#[test]
fn a_known_sensitive_type_is_refused_on_every_read_path() {
    let state = State::in_memory();
    state
        .create(Resource::new(
            "api",
            Token {
                secret: "s3".into(),
            },
        ))
        .expect("created");
    assert_all_reads_refused(&state, Token::NAMESPACE, Token::TYPE, "api");

    let admin = ClientView::new(state.clone(), Role::Admin);
    assert_eq!(
        admin
            .get_json(Token::NAMESPACE, Token::TYPE, "api")
            .expect("admin reads"),
        serde_json::json!({"secret": "s3"})
    );
    assert_eq!(
        admin
            .list(Token::NAMESPACE, Token::TYPE, &Selector::all())
            .expect("admin lists")
            .len(),
        1
    );
}

#[tokio::test]
async fn watchers_opened_before_a_sensitive_type_exists_never_see_its_resources() {
    let state = State::in_memory();
    // Nobody has written a token yet: the reader's watches open (there is nothing to
    // leak), and must stay blind once tokens appear.
    let mut watchers: Vec<(String, Watcher)> = Vec::new();
    for role in NON_ADMINS {
        let view = ClientView::new(state.clone(), role);
        let kind = view
            .watch(Token::NAMESPACE, Token::TYPE, None)
            .expect("an unknown type is watchable");
        let from_bookmark = view
            .watch(Token::NAMESPACE, Token::TYPE, Some(state.bookmark()))
            .expect("an unknown type is watchable from a bookmark");
        let one = view
            .watch_resource(Token::NAMESPACE, Token::TYPE, "api")
            .expect("an unknown resource is watchable");
        watchers.push((format!("{role:?} watch"), kind));
        watchers.push((format!("{role:?} watch from a bookmark"), from_bookmark));
        watchers.push((format!("{role:?} watch one"), one));
    }
    let mut admin = ClientView::new(state.clone(), Role::Admin)
        .watch(Token::NAMESPACE, Token::TYPE, None)
        .expect("admin watches");

    state
        .create(Resource::new(
            "api",
            Token {
                secret: "s3".into(),
            },
        ))
        .expect("created");
    let mut token = state.get::<Token>("api").expect("stored");
    token.spec.secret = "s4".into();
    state.update(token).expect("updated");
    state.destroy::<Token>("api", None).expect("destroyed");

    for (what, watcher) in &mut watchers {
        assert_never_shows_a_resource(watcher, what);
        assert!(
            matches!(watcher.next().await, Err(WatchError::Forbidden { .. })),
            "{what}: ended with Forbidden"
        );
    }
    let mut seen = Vec::new();
    while let Some(event) = admin.try_next().expect("admin watch") {
        if let Some(resource) = event.resource() {
            seen.push(resource.spec::<Token>().expect("a token").secret.clone());
        }
    }
    assert_eq!(seen, ["s3", "s4", "s4"], "the admin sees every event");
    assert_all_reads_refused(&state, Token::NAMESPACE, Token::TYPE, "api");
}

#[test]
fn a_sensitive_type_known_only_from_disk_stays_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    {
        let state = State::open_persistent(dir.path()).expect("opens");
        state
            .create(Resource::new(
                "root",
                Key {
                    material: "k".into(),
                },
            ))
            .expect("created");
        state
            .create(Resource::new("a", setting(1)))
            .expect("created");
    }
    // After a reboot, before the Rust type writes again, only the stored
    // sensitivity protects the key.
    let state = State::open_persistent(dir.path()).expect("reopens");
    assert_all_reads_refused(&state, Key::NAMESPACE, Key::TYPE, "root");
    let reader = ClientView::new(state.clone(), Role::Reader);
    assert_eq!(
        reader
            .list("config", "Settings.test.skerry.dev", &Selector::all())
            .expect("a public type is readable")
            .len(),
        1
    );
}

#[test]
fn public_types_are_readable_by_every_role() {
    let state = State::in_memory();
    let mut early = ClientView::new(state.clone(), Role::Reader)
        .watch("config", "Settings.test.skerry.dev", None)
        .expect("watch");
    state
        .create(Resource::new("a", setting(1)))
        .expect("created");
    for role in NON_ADMINS {
        let view = ClientView::new(state.clone(), role);
        assert!(view.get("config", "Settings.test.skerry.dev", "a").is_ok());
        assert_eq!(
            view.list("config", "Settings.test.skerry.dev", &Selector::all())
                .expect("list")
                .len(),
            1
        );
    }
    assert!(matches!(
        early.try_next(),
        Ok(Some(WatchEvent::Bootstrapped { .. }))
    ));
    assert!(matches!(
        early.try_next(),
        Ok(Some(WatchEvent::Created { .. }))
    ));
}

#[test]
fn spec_json_renders_a_listed_resource_and_checks_the_role_again() {
    let state = State::in_memory();
    state
        .create(Resource::new(
            "api",
            Token {
                secret: "s3".into(),
            },
        ))
        .unwrap();
    let admin = ClientView::new(state.clone(), Role::Admin);
    let listed = admin
        .list(Token::NAMESPACE, Token::TYPE, &Selector::all())
        .unwrap();
    assert_eq!(
        admin.spec_json(&listed[0]).unwrap(),
        serde_json::json!({"secret": "s3"})
    );
    for role in NON_ADMINS {
        let view = ClientView::new(state.clone(), role);
        assert!(forbidden(view.spec_json(&listed[0])), "{role:?} spec_json");
    }
}
