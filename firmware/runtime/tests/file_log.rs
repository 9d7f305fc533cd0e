//! The file-log backend beyond the conformance suite: torn writes at every byte,
//! corruption, leftover compaction files, compaction itself, and what persists.

mod common;

use std::fs;
use std::path::Path;

use common::{setting, Key, Setting, Token};
use skerry_runtime::{
    AccessError, BackendError, ClientView, Durability, FileLog, Resource, Role, Selector, State,
    StateOptions,
};

fn open(dir: &Path) -> State {
    let log = FileLog::open_with(dir, Durability::ProcessCrash, u64::MAX).expect("log opens");
    State::with_backend(Box::new(log), StateOptions::default()).expect("state opens")
}

fn contents(state: &State) -> Vec<(String, u64, u64)> {
    state
        .list::<Setting>(&Selector::all())
        .expect("lists")
        .into_iter()
        .map(|r| {
            (
                r.metadata.id.to_string(),
                r.metadata.version.0,
                r.spec.value,
            )
        })
        .collect()
}

#[test]
fn a_log_cut_at_any_byte_reopens_as_a_prefix_of_its_writes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let log_path = dir.path().join("state.log");
    let state = open(dir.path());
    // (file length after the write, state after the write)
    let mut checkpoints = vec![(
        fs::metadata(&log_path).expect("log").len(),
        contents(&state),
    )];
    let mut step = |state: &State| {
        checkpoints.push((fs::metadata(&log_path).expect("log").len(), contents(state)))
    };
    state
        .create(Resource::new("a", setting(1)))
        .expect("create");
    step(&state);
    state
        .create(Resource::new("b", setting(2)))
        .expect("create");
    step(&state);
    let mut a = state.get::<Setting>("a").expect("a");
    a.spec = setting(3);
    state.update(a).expect("update");
    step(&state);
    state.destroy::<Setting>("b", None).expect("destroy");
    step(&state);
    state
        .add_finalizer::<Setting>("a", "holder")
        .expect("finalizer");
    step(&state);
    drop(state);

    let full = fs::read(&log_path).expect("read log");
    let header = checkpoints[0].0 as usize;
    // Every record boundary and its neighbours, and every 5th byte in between.
    let mut cuts: Vec<usize> = (header..=full.len()).step_by(5).collect();
    for (len, _) in &checkpoints {
        let len = *len as usize;
        cuts.extend(
            [len.saturating_sub(1), len, len + 1]
                .into_iter()
                .filter(|c| (header..=full.len()).contains(c)),
        );
    }
    for cut in cuts {
        let copy = tempfile::tempdir().expect("temp dir");
        fs::write(copy.path().join("state.log"), &full[..cut]).expect("write cut log");
        let expected = &checkpoints
            .iter()
            .rev()
            .find(|(len, _)| *len as usize <= cut)
            .expect("header checkpoint")
            .1;
        let reopened = open(copy.path());
        assert_eq!(&contents(&reopened), expected, "log cut at byte {cut}");
        // The torn tail is gone from disk, so new writes are not hidden behind it.
        reopened
            .create(Resource::new("z", setting(9)))
            .expect("write after recovery");
        drop(reopened);
        let again = open(copy.path());
        assert!(
            again.get::<Setting>("z").is_ok(),
            "write after recovery at cut {cut} persisted"
        );
    }
}

#[test]
fn a_corrupt_last_record_is_cut_off_and_reported() {
    let dir = tempfile::tempdir().expect("temp dir");
    let state = open(dir.path());
    state
        .create(Resource::new("a", setting(1)))
        .expect("create");
    state
        .create(Resource::new("b", setting(2)))
        .expect("create");
    drop(state);
    let path = dir.path().join("state.log");
    let mut bytes = fs::read(&path).expect("read");
    let last = bytes.len() - 3;
    bytes[last] ^= 0x55;
    fs::write(&path, &bytes).expect("write");
    let log = FileLog::open(dir.path()).expect("opens");
    let recovery = log.recovery();
    assert_eq!(recovery.records, 1);
    assert!(recovery.truncated_bytes > 0);
    let state = State::with_backend(Box::new(log), StateOptions::default()).expect("state");
    assert_eq!(contents(&state), [("a".to_owned(), 1, 1)]);
    assert_eq!(
        fs::metadata(&path).expect("log").len() as usize,
        bytes.len() - recovery.truncated_bytes as usize
    );
}

#[test]
fn a_file_that_is_not_a_log_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    fs::write(dir.path().join("state.log"), b"hello, not a log").expect("write");
    let err = FileLog::open(dir.path()).expect_err("must refuse");
    assert!(matches!(err, BackendError::BadHeader { .. }), "{err:?}");
}

#[test]
fn an_unfinished_compaction_is_discarded() {
    let dir = tempfile::tempdir().expect("temp dir");
    let state = open(dir.path());
    state
        .create(Resource::new("a", setting(1)))
        .expect("create");
    drop(state);
    fs::write(dir.path().join("state.log.tmp"), b"SKERRYLOG1\n\x10\x00").expect("write tmp");
    let log = FileLog::open(dir.path()).expect("opens");
    assert!(log.recovery().discarded_compaction);
    assert!(!dir.path().join("state.log.tmp").exists());
    let state = State::with_backend(Box::new(log), StateOptions::default()).expect("state");
    assert_eq!(contents(&state), [("a".to_owned(), 1, 1)]);
}

#[test]
fn compaction_shrinks_the_log_and_keeps_the_state() {
    let dir = tempfile::tempdir().expect("temp dir");
    let log = FileLog::open_with(dir.path(), Durability::Fsync, 8 * 1024).expect("opens");
    let state = State::with_backend(Box::new(log), StateOptions::default()).expect("state");
    state
        .create(Resource::new("hot", setting(0)))
        .expect("create");
    state
        .create(Resource::new("cold", setting(7)))
        .expect("create");
    for value in 1..=300 {
        let mut hot = state.get::<Setting>("hot").expect("hot");
        hot.spec = setting(value);
        state.update(hot).expect("update");
    }
    let size = fs::metadata(dir.path().join("state.log"))
        .expect("log")
        .len();
    assert!(
        size < 16 * 1024,
        "300 updates of ~150 bytes were compacted, log is {size} bytes"
    );
    let before = contents(&state);
    drop(state);
    assert_eq!(contents(&open(dir.path())), before);
    assert_eq!(
        before,
        [("cold".to_owned(), 1, 7), ("hot".to_owned(), 301, 300)]
    );
}

#[test]
fn only_persistent_types_survive_and_sensitivity_is_remembered() {
    let dir = tempfile::tempdir().expect("temp dir");
    let state = open(dir.path());
    state
        .create(Resource::new(
            "wg",
            Key {
                material: "k".into(),
            },
        ))
        .expect("create");
    state
        .create(Resource::new("join", Token { secret: "t".into() }))
        .expect("create");
    state
        .create(Resource::new("a", setting(1)))
        .expect("create");
    drop(state);

    let state = open(dir.path());
    assert!(
        state.get::<Token>("join").is_err(),
        "ephemeral types start empty after reboot"
    );
    assert_eq!(contents(&state), [("a".to_owned(), 1, 1)]);
    // Before any code touches the Key type again, its stored sensitivity applies.
    let reader = ClientView::new(state.clone(), Role::Reader);
    let denied = reader.get("default", "Keys.test.skerry.dev", "wg");
    assert!(
        matches!(denied, Err(AccessError::Forbidden { .. })),
        "{denied:?}"
    );
    let admin = ClientView::new(state.clone(), Role::Admin);
    let json = admin
        .get_json("default", "Keys.test.skerry.dev", "wg")
        .expect("admin reads");
    assert_eq!(json, serde_json::json!({"material": "k"}));
    assert_eq!(
        state.get::<Key>("wg").expect("typed read").spec.material,
        "k"
    );
    let watch = reader.watch("default", "Keys.test.skerry.dev", None);
    assert!(
        matches!(watch, Err(AccessError::Forbidden { .. })),
        "{watch:?}"
    );
    assert!(admin.watch("default", "Keys.test.skerry.dev", None).is_ok());
    let setting_json = reader
        .get_json("config", "Settings.test.skerry.dev", "a")
        .expect("public");
    assert_eq!(setting_json["value"], 1);
}

#[test]
fn corruption_in_the_middle_is_an_error_and_nothing_is_dropped() {
    let dir = tempfile::tempdir().expect("temp dir");
    let state = open(dir.path());
    for (id, value) in [("a", 1), ("b", 2), ("c", 3)] {
        state
            .create(Resource::new(id, setting(value)))
            .expect("create");
    }
    drop(state);
    let path = dir.path().join("state.log");
    let mut bytes = fs::read(&path).expect("read");
    // Flip a byte inside the second record's payload: the third stays intact.
    let first_len = u32::from_le_bytes(bytes[11..15].try_into().expect("4 bytes")) as usize;
    let second = 11 + 8 + first_len;
    bytes[second + 8 + 5] ^= 0x01;
    fs::write(&path, &bytes).expect("write");

    let err = FileLog::open(dir.path()).expect_err("mid-log corruption refuses to open");
    assert!(
        matches!(err, BackendError::Corrupt { offset, .. } if offset == second as u64),
        "{err:?}"
    );
    assert!(err.to_string().contains("not a torn last write"), "{err}");
    assert_eq!(
        fs::read(&path).expect("read"),
        bytes,
        "nothing was truncated"
    );
}
