//! Property tests with random interleavings of writes, watches and resumes:
//! - every watcher converges on the final state;
//! - a watcher sees each write of its kind exactly once and in order, across
//!   resumes from bookmarks and across overflowing its live buffer;
//! - a snapshot equals the state at its bookmark;
//! - a chain of transforms converges on the function of its input, whatever the
//!   interleaving of writes, teardowns and scheduling.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{StageA, StageB, StageC};
use proptest::prelude::*;
use skerry_runtime::{
    Bookmark, Resource, Runtime, RuntimeOptions, Selector, State, StateError, StateOptions,
    Transform, WatchError, WatchEvent, Watcher,
};

type View = BTreeMap<String, (u64, u64)>;

#[derive(Debug, Clone)]
enum Op {
    Create(u8),
    Update(u8),
    Destroy(u8),
    Open(u8, bool),
    Consume(u8, u8),
    Resume(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..6u8).prop_map(Op::Create),
        4 => (0..6u8).prop_map(Op::Update),
        2 => (0..6u8).prop_map(Op::Destroy),
        1 => (0..3u8, any::<bool>()).prop_map(|(w, s)| Op::Open(w, s)),
        3 => (0..3u8, 1..6u8).prop_map(|(w, n)| Op::Consume(w, n)),
        1 => (0..3u8).prop_map(Op::Resume),
    ]
}

/// A write as the model recorded it: revision, id, version after (0 = destroyed).
#[derive(Debug, Clone, PartialEq)]
struct Write {
    revision: u64,
    id: String,
    version: u64,
    value: Option<u64>,
}

struct Model {
    state: View,
    writes: Vec<Write>,
}

impl Model {
    fn at(&self, revision: u64) -> View {
        let mut view = View::new();
        for w in self.writes.iter().take_while(|w| w.revision <= revision) {
            apply(&mut view, w);
        }
        view
    }
}

fn apply(view: &mut View, w: &Write) {
    match w.value {
        Some(value) => {
            view.insert(w.id.clone(), (w.version, value));
        }
        None => {
            view.remove(&w.id);
        }
    }
}

struct Observer {
    watcher: Option<Watcher>,
    view: View,
    /// Bookmark of the last event applied (None while inside a snapshot).
    last: Option<u64>,
    in_snapshot: bool,
}

impl Observer {
    fn open(state: &State, since: Option<u64>) -> Self {
        let mut observer = Observer {
            watcher: None,
            view: View::new(),
            last: since,
            in_snapshot: since.is_none(),
        };
        observer.watcher = Some(match since {
            Some(b) => state
                .watch_kind::<StageA>(Some(Bookmark {
                    epoch: state.epoch(),
                    revision: b,
                }))
                .expect("resume"),
            None => state.watch_kind::<StageA>(None).expect("watch"),
        });
        observer
    }

    /// Applies up to `n` ready events, checking each against the model.
    fn consume(&mut self, state: &State, model: &Model, n: usize) -> Result<(), TestCaseError> {
        for _ in 0..n {
            let Some(watcher) = self.watcher.as_mut() else {
                return Ok(());
            };
            let event = match watcher.try_next() {
                Ok(Some(event)) => event,
                Ok(None) => return Ok(()),
                Err(WatchError::Expired { .. }) => {
                    // Fell behind the retained history: start over with a snapshot.
                    *self = Observer::open(state, None);
                    continue;
                }
                Err(e) => return Err(TestCaseError::fail(format!("watch failed: {e}"))),
            };
            match (&event, event.bookmark()) {
                (WatchEvent::Bootstrapped { .. }, Some(b)) => {
                    prop_assert!(self.in_snapshot, "Bootstrapped outside a snapshot");
                    prop_assert_eq!(
                        &self.view,
                        &model.at(b.revision),
                        "snapshot differs from the state at its bookmark"
                    );
                    self.in_snapshot = false;
                    self.last = Some(b.revision);
                }
                (WatchEvent::Created { resource, .. }, None) => {
                    prop_assert!(self.in_snapshot, "snapshot item outside a snapshot");
                    let value = resource.spec::<StageA>().expect("A").0;
                    self.view.insert(
                        resource.metadata.id.to_string(),
                        (resource.metadata.version.0, value),
                    );
                }
                (_, Some(b)) => {
                    prop_assert!(!self.in_snapshot, "live event inside a snapshot");
                    let last = self.last.unwrap_or(0);
                    let expected = model.writes.iter().find(|w| w.revision > last);
                    let resource = event.resource().expect("live events carry a resource");
                    let got = Write {
                        revision: b.revision,
                        id: resource.metadata.id.to_string(),
                        version: resource.metadata.version.0,
                        value: match event {
                            WatchEvent::Destroyed { .. } => None,
                            _ => Some(resource.spec::<StageA>().expect("A").0),
                        },
                    };
                    prop_assert_eq!(
                        Some(&got),
                        expected,
                        "event lost or duplicated after {}",
                        last
                    );
                    apply(&mut self.view, &got);
                    self.last = Some(b.revision);
                }
                (other, None) => {
                    return Err(TestCaseError::fail(format!("unexpected event {other:?}")))
                }
            }
        }
        Ok(())
    }

    /// Drops the watcher and resumes from the last bookmark (or re-snapshots if it is
    /// mid-snapshot or its bookmark expired).
    fn resume(&mut self, state: &State) {
        self.watcher = None;
        let resumed = match (self.in_snapshot, self.last) {
            (false, Some(b)) => state.watch_kind::<StageA>(Some(Bookmark {
                epoch: state.epoch(),
                revision: b,
            })),
            _ => Err(WatchError::Closed),
        };
        match resumed {
            Ok(watcher) => self.watcher = Some(watcher),
            Err(_) => *self = Observer::open(state, None),
        }
    }
}

fn run_interleaving(ops: Vec<Op>, history: usize, capacity: usize) -> Result<(), TestCaseError> {
    let state = State::in_memory_with(StateOptions {
        history_per_kind: history,
        channel_capacity: capacity,
    });
    let mut model = Model {
        state: View::new(),
        writes: Vec::new(),
    };
    let mut observers: BTreeMap<u8, Observer> = BTreeMap::new();
    let mut next_value = 0;
    for op in ops {
        let write = match op {
            Op::Create(i) => {
                let id = format!("r{i}");
                next_value += 1;
                let result = state.create(Resource::new(&id, StageA(next_value)));
                match model.state.contains_key(&id) {
                    true => {
                        let duplicate = matches!(result, Err(StateError::AlreadyExists { .. }));
                        prop_assert!(duplicate, "creating an existing id must fail");
                        None
                    }
                    false => Some((id, result.expect("created").0, Some(next_value))),
                }
            }
            Op::Update(i) => {
                let id = format!("r{i}");
                next_value += 1;
                match state.get::<StageA>(&id) {
                    Ok(mut r) => {
                        r.spec = StageA(next_value);
                        Some((id, state.update(r).expect("updated").0, Some(next_value)))
                    }
                    Err(_) => None,
                }
            }
            Op::Destroy(i) => {
                let id = format!("r{i}");
                match state.get::<StageA>(&id) {
                    Ok(r) => {
                        state.destroy::<StageA>(&id, None).expect("destroyed");
                        Some((id, r.metadata.version.0, None))
                    }
                    Err(_) => None,
                }
            }
            Op::Open(w, snapshot) => {
                let since = (!snapshot).then(|| state.bookmark().revision);
                let mut observer = Observer::open(&state, since);
                if since.is_some() {
                    observer.view = model.state.clone();
                }
                observers.insert(w, observer);
                None
            }
            Op::Consume(w, n) => {
                if let Some(o) = observers.get_mut(&w) {
                    o.consume(&state, &model, n as usize)?;
                }
                None
            }
            Op::Resume(w) => {
                if let Some(o) = observers.get_mut(&w) {
                    o.resume(&state);
                }
                None
            }
        };
        if let Some((id, version, value)) = write {
            let w = Write {
                revision: state.bookmark().revision,
                id,
                version,
                value,
            };
            apply(&mut model.state, &w);
            model.writes.push(w);
        }
    }
    for observer in observers.values_mut() {
        observer.consume(&state, &model, usize::MAX)?;
        prop_assert_eq!(&observer.view, &model.state, "watcher did not converge");
    }
    let actual: View = state
        .list::<StageA>(&Selector::all())
        .expect("list")
        .into_iter()
        .map(|r| (r.metadata.id.to_string(), (r.metadata.version.0, r.spec.0)))
        .collect();
    prop_assert_eq!(actual, model.state);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn watchers_see_every_write_once_and_converge(
        ops in proptest::collection::vec(op(), 1..120),
        capacity in 1..8usize,
    ) {
        // History long enough that no bookmark expires: resumes must be exact.
        run_interleaving(ops, 10_000, capacity)?;
    }

    #[test]
    fn watchers_converge_even_when_history_runs_out(
        ops in proptest::collection::vec(op(), 1..120),
        history in 1..6usize,
        capacity in 1..4usize,
    ) {
        run_interleaving(ops, history, capacity)?;
    }
}

#[derive(Debug, Clone)]
enum ChainOp {
    Set(u8, u64),
    Teardown(u8),
    Run(u8),
}

fn chain_op() -> impl Strategy<Value = ChainOp> {
    prop_oneof![
        5 => (0..5u8, 0..20u64).prop_map(|(i, v)| ChainOp::Set(i, v)),
        1 => (0..5u8).prop_map(ChainOp::Teardown),
        2 => (0..5u8).prop_map(ChainOp::Run),
    ]
}

/// Destroys torn-down inputs whose finalizers were released.
fn reap(state: &State) {
    for a in state.list::<StageA>(&Selector::all()).expect("list") {
        if a.metadata.phase == skerry_runtime::Phase::TearingDown
            && a.metadata.finalizers.is_empty()
        {
            state
                .destroy::<StageA>(&a.metadata.id, None)
                .expect("destroy released input");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn a_transform_chain_converges_on_its_function(ops in proptest::collection::vec(chain_op(), 1..60)) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .expect("tokio runtime");
        rt.block_on(async move {
            let state = State::in_memory();
            let mut runtime = Runtime::new(state.clone(), RuntimeOptions::default());
            runtime.register(Transform::new("double", |a: &Resource<StageA>| Some(StageB(a.spec.0 * 2)))).expect("register");
            runtime.register(Transform::new("quarter", |b: &Resource<StageB>| (b.spec.0 % 4 == 0).then_some(StageC(b.spec.0 / 4)))).expect("register");
            let handle = runtime.start();
            for op in ops {
                match op {
                    ChainOp::Set(i, v) => {
                        let id = format!("a{i}");
                        match state.get::<StageA>(&id) {
                            Ok(mut a) if a.metadata.phase == skerry_runtime::Phase::Running => {
                                a.spec = StageA(v);
                                state.update(a).expect("update");
                            }
                            Ok(_) => {}
                            Err(_) => {
                                state.create(Resource::new(&id, StageA(v))).expect("create");
                            }
                        }
                    }
                    ChainOp::Teardown(i) => {
                        let _ = state.teardown::<StageA>(&format!("a{i}"), None);
                    }
                    ChainOp::Run(n) => {
                        for _ in 0..n {
                            tokio::task::yield_now().await;
                        }
                        reap(&state);
                    }
                }
            }
            // Let everything settle (virtual time), reaping released inputs.
            for _ in 0..200 {
                tokio::time::sleep(Duration::from_millis(5)).await;
                reap(&state);
            }
            let running: Vec<_> = state.list::<StageA>(&Selector::all()).expect("list");
            prop_assert!(running.iter().all(|a| a.metadata.phase == skerry_runtime::Phase::Running), "a torn-down input was never released");
            let want_b: Vec<_> = running.iter().map(|a| (a.metadata.id.to_string(), a.spec.0 * 2)).collect();
            let want_c: Vec<_> = running.iter().filter(|a| (a.spec.0 * 2) % 4 == 0).map(|a| (a.metadata.id.to_string(), a.spec.0 / 2)).collect();
            let got_b: Vec<_> = state.list::<StageB>(&Selector::all()).expect("list").into_iter().map(|b| (b.metadata.id.to_string(), b.spec.0)).collect();
            let got_c: Vec<_> = state.list::<StageC>(&Selector::all()).expect("list").into_iter().map(|c| (c.metadata.id.to_string(), c.spec.0)).collect();
            prop_assert_eq!(got_b, want_b);
            prop_assert_eq!(got_c, want_c);
            prop_assert!(handle.statuses().iter().all(|s| s.failures == 0), "{:?}", handle.statuses());
            handle.shutdown().await;
            Ok(())
        })?;
    }
}
