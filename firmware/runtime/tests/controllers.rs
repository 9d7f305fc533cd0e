//! The controller runtime: registration checks, transform chains, output cleanup and
//! finalizers, coalescing, timers, triggers, restart with backoff, status, the graph.
//! Every test runs on tokio's paused clock: waiting costs no real time.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{StageA, StageB, StageC, Token};
use skerry_runtime::controller::{ControllerStatusSpec, EdgeKind};
use skerry_runtime::{
    Controller, ControllerError, Input, Output, ReconcileContext, RegistrationError, Requeue,
    Resource, Runtime, RuntimeHandle, RuntimeOptions, Selector, State, StateError, Transform,
};
use tokio::time::Instant;

/// Polls `check` on the paused clock until it holds (at most 60 virtual seconds).
async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

fn double() -> impl Controller {
    Transform::new("double", |a: &Resource<StageA>| Some(StageB(a.spec.0 * 2)))
}

fn plus_one_if_even() -> impl Controller {
    Transform::new("plus-one", |b: &Resource<StageB>| {
        (b.spec.0 % 4 == 0).then_some(StageC(b.spec.0 + 1))
    })
}

fn values<T: skerry_runtime::ResourceSpec>(
    state: &State,
    f: impl Fn(&T) -> u64,
) -> Vec<(String, u64)> {
    state
        .list::<T>(&Selector::all())
        .expect("lists")
        .iter()
        .map(|r| (r.metadata.id.to_string(), f(&r.spec)))
        .collect()
}

/// Starts a runtime over `state` running the chain `double` then `plus_one_if_even`.
fn start_chain(state: &State) -> RuntimeHandle {
    let mut runtime = Runtime::new(state.clone(), RuntimeOptions::default());
    runtime.register(double()).expect("register");
    runtime.register(plus_one_if_even()).expect("register");
    runtime.start()
}

fn set_a(state: &State, id: &str, value: u64) {
    match state.get::<StageA>(id) {
        Ok(mut a) => {
            a.spec = StageA(value);
            state.update(a).expect("update A");
        }
        Err(_) => {
            state
                .create(Resource::new(id, StageA(value)))
                .expect("create A");
        }
    }
}

#[test]
fn conflicting_output_ownership_fails_at_registration() {
    let state = State::in_memory();
    let mut runtime = Runtime::new(state, RuntimeOptions::default());
    runtime.register(double()).expect("first owner");
    let second = Transform::new("double-again", |a: &Resource<StageA>| {
        Some(StageB(a.spec.0))
    });
    assert_eq!(
        runtime.register(second),
        Err(RegistrationError::ExclusiveConflict {
            controller: "double-again".into(),
            type_name: "B.test.skerry.dev".into(),
            existing: "double".into(),
        })
    );
    let shared = Probe::new("shared-b", vec![], vec![Output::shared::<StageB>()]);
    assert!(matches!(
        runtime.register(shared.0),
        Err(RegistrationError::SharedOnExclusive { .. })
    ));
    let dup = Probe::new("double", vec![], vec![]);
    assert!(matches!(
        runtime.register(dup.0),
        Err(RegistrationError::DuplicateName { .. })
    ));
    let loopy = Probe::new(
        "loop",
        vec![Input::weak::<StageC>()],
        vec![Output::exclusive::<StageC>()],
    );
    assert!(matches!(
        runtime.register(loopy.0),
        Err(RegistrationError::InputIsOutput { .. })
    ));

    let mut shared_runtime = Runtime::new(State::in_memory(), RuntimeOptions::default());
    let one = Probe::new("one", vec![], vec![Output::shared::<StageC>()]);
    let two = Probe::new("two", vec![], vec![Output::shared::<StageC>()]);
    shared_runtime.register(one.0).expect("shared");
    shared_runtime
        .register(two.0)
        .expect("shared twice is fine");
    let exclusive = Probe::new("three", vec![], vec![Output::exclusive::<StageC>()]);
    assert!(matches!(
        shared_runtime.register(exclusive.0),
        Err(RegistrationError::ExclusiveConflict { .. })
    ));
}

#[tokio::test(start_paused = true)]
async fn a_chain_of_transforms_follows_its_input_and_cleans_up() {
    let state = State::in_memory();
    let handle = start_chain(&state);

    set_a(&state, "x", 2);
    set_a(&state, "y", 3);
    eventually("C for x and y", || {
        values::<StageC>(&state, |c| c.0).len() == 1
    })
    .await;
    eventually("B for x and y", || {
        values::<StageB>(&state, |b| b.0) == [("x".into(), 4), ("y".into(), 6)]
    })
    .await;
    assert_eq!(values::<StageC>(&state, |c| c.0), [("x".to_owned(), 5)]);

    // y's B becomes a multiple of 4: its C appears; x's stops being one: its C goes.
    set_a(&state, "y", 4);
    set_a(&state, "x", 1);
    eventually("C follows", || {
        values::<StageC>(&state, |c| c.0) == [("y".into(), 9)]
    })
    .await;

    // Outputs belong to their controller.
    let b = state.get::<StageB>("y").expect("B");
    assert_eq!(b.metadata.owner.as_deref(), Some("double"));

    let statuses = handle.statuses();
    assert!(
        statuses.iter().all(|s| s.reconciles > 0 && s.failures == 0),
        "{statuses:?}"
    );
    assert!(statuses.iter().all(|s| s.last_duration.is_some()));
    handle.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn tearing_down_an_input_releases_it_only_after_outputs_are_gone() {
    let state = State::in_memory();
    let handle = start_chain(&state);

    set_a(&state, "x", 2);
    eventually("C exists", || state.get::<StageC>("x").is_ok()).await;
    let a = state.get::<StageA>("x").expect("A");
    assert_eq!(
        a.metadata.finalizers,
        ["double"],
        "the transform holds its input"
    );
    assert_eq!(
        state.get::<StageB>("x").expect("B").metadata.finalizers,
        ["plus-one"]
    );
    let refused = state.destroy::<StageA>("x", None);
    assert!(
        matches!(refused, Err(StateError::FinalizersPending { .. })),
        "{refused:?}"
    );

    assert!(!state.teardown::<StageA>("x", None).expect("teardown"));
    eventually("A released", || {
        state
            .get::<StageA>("x")
            .is_ok_and(|a| a.metadata.finalizers.is_empty())
    })
    .await;
    assert!(
        state.get::<StageB>("x").is_err(),
        "B destroyed before A was released"
    );
    assert!(state.get::<StageC>("x").is_err(), "C destroyed before B");
    state.destroy::<StageA>("x", None).expect("A destroyed");
    handle.shutdown().await;
}

/// A hand-written controller whose behaviour the test scripts.
type Script = Box<dyn FnMut(&mut ReconcileContext, u32) -> Result<Requeue, ControllerError> + Send>;

/// Each run: when, whether it was a full resync, which A ids changed.
type Runs = Arc<Mutex<Vec<(Instant, bool, Vec<String>)>>>;

struct Probe {
    name: &'static str,
    inputs: Vec<Input>,
    outputs: Vec<Output>,
    script: Script,
    runs: Runs,
}

impl Probe {
    fn new(name: &'static str, inputs: Vec<Input>, outputs: Vec<Output>) -> (Self, Runs) {
        Self::scripted(
            name,
            inputs,
            outputs,
            Box::new(|_, _| Ok(Requeue::OnChange)),
        )
    }

    fn scripted(
        name: &'static str,
        inputs: Vec<Input>,
        outputs: Vec<Output>,
        script: Script,
    ) -> (Self, Runs) {
        let runs = Arc::new(Mutex::new(Vec::new()));
        (
            Probe {
                name,
                inputs,
                outputs,
                script,
                runs: runs.clone(),
            },
            runs,
        )
    }
}

impl Controller for Probe {
    fn name(&self) -> &str {
        self.name
    }
    fn inputs(&self) -> Vec<Input> {
        self.inputs.clone()
    }
    fn outputs(&self) -> Vec<Output> {
        self.outputs.clone()
    }
    async fn reconcile(&mut self, ctx: &mut ReconcileContext) -> Result<Requeue, ControllerError> {
        let changed = ctx
            .changed::<StageA>()
            .map(|ids| ids.iter().map(|id| id.to_string()).collect())
            .unwrap_or_default();
        let run = {
            let mut runs = self.runs.lock().expect("runs");
            runs.push((Instant::now(), ctx.is_full_resync(), changed));
            runs.len() as u32
        };
        (self.script)(ctx, run)
    }
}

/// Starts a runtime over `state` with `options` that runs `probe` alone.
fn start_alone(state: &State, options: RuntimeOptions, probe: Probe) -> RuntimeHandle {
    let mut runtime = Runtime::new(state.clone(), options);
    runtime.register(probe).expect("register");
    runtime.start()
}

#[tokio::test(start_paused = true)]
async fn bursts_of_changes_coalesce_into_few_reconciles() {
    let state = State::in_memory();
    let (probe, runs) = Probe::new("watcher", vec![Input::weak::<StageA>()], vec![]);
    let handle = start_alone(&state, RuntimeOptions::default(), probe);
    eventually("first run", || runs.lock().expect("runs").len() == 1).await;
    assert!(
        runs.lock().expect("runs")[0].1,
        "the first run is a full resync"
    );

    for round in 0..10 {
        for i in 0..100 {
            set_a(&state, &format!("id{i:03}"), round);
        }
    }
    eventually("all seen", || {
        let runs = runs.lock().expect("runs");
        let seen: std::collections::BTreeSet<_> =
            runs.iter().skip(1).flat_map(|r| r.2.clone()).collect();
        seen.len() == 100
    })
    .await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let count = runs.lock().expect("runs").len();
    assert!(
        count <= 3,
        "1000 writes in one burst caused {count} reconciles"
    );
    assert_eq!(
        handle.status("watcher").expect("status").reconciles as usize,
        count
    );
    handle.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn timers_and_triggers_cause_full_resyncs() {
    let state = State::in_memory();
    let (probe, runs) = Probe::scripted(
        "poller",
        vec![Input::weak::<StageA>()],
        vec![],
        Box::new(|_, _| Ok(Requeue::After(Duration::from_secs(10)))),
    );
    let handle = start_alone(&state, RuntimeOptions::default(), probe);
    let start = Instant::now();
    eventually("three timer runs", || runs.lock().expect("runs").len() == 3).await;
    {
        let runs = runs.lock().expect("runs");
        assert!(runs.iter().all(|r| r.1), "timer runs are full resyncs");
        assert_eq!(runs[2].0 - start, Duration::from_secs(20));
    }
    assert!(handle.trigger("poller"));
    assert!(!handle.trigger("nobody"));
    eventually("triggered run", || runs.lock().expect("runs").len() == 4).await;
    assert!(
        Instant::now() - start < Duration::from_secs(21),
        "the trigger did not wait for the timer"
    );
    handle.shutdown().await;
}

#[derive(Debug, thiserror::Error)]
#[error("upstream not ready")]
struct NotReady;

#[tokio::test(start_paused = true)]
async fn failing_controllers_restart_with_backoff_and_show_their_error() {
    let state = State::in_memory();
    let options = RuntimeOptions {
        backoff_base: Duration::from_millis(100),
        backoff_max: Duration::from_secs(1),
    };
    let (probe, runs) = Probe::scripted(
        "flaky",
        vec![],
        vec![],
        Box::new(|_, run| match run {
            1 | 3 | 4 | 5 | 6 => Err(Box::new(NotReady)),
            2 => panic!("boom in run 2"),
            _ => Ok(Requeue::OnChange),
        }),
    );
    let handle = start_alone(&state, options, probe);

    eventually("first failure", || {
        handle.status("flaky").is_some_and(|s| s.failures == 1)
    })
    .await;
    let status = handle.status("flaky").expect("status");
    assert_eq!(status.last_error.as_deref(), Some("upstream not ready"));
    assert_eq!(status.backoff, Some(Duration::from_millis(100)));
    let published = state
        .get::<ControllerStatusSpec>("flaky")
        .expect("status resource");
    assert_eq!(
        published.spec.last_error.as_deref(),
        Some("upstream not ready")
    );

    eventually("panic recorded", || {
        handle.status("flaky").is_some_and(|s| s.panics == 1)
    })
    .await;
    assert_eq!(
        handle
            .status("flaky")
            .expect("status")
            .last_error
            .as_deref(),
        Some("panicked: boom in run 2")
    );

    eventually("recovered", || runs.lock().expect("runs").len() == 7).await;
    let times: Vec<_> = runs.lock().expect("runs").iter().map(|r| r.0).collect();
    let gaps: Vec<_> = times
        .windows(2)
        .map(|w| (w[1] - w[0]).as_millis())
        .collect();
    assert_eq!(
        gaps,
        [100, 200, 400, 800, 1000, 1000],
        "exponential backoff, capped"
    );
    assert!(
        runs.lock().expect("runs").iter().all(|r| r.1),
        "restarts are full resyncs"
    );
    eventually("status cleared", || {
        handle
            .status("flaky")
            .is_some_and(|s| s.last_error.is_none())
    })
    .await;
    let status = handle.status("flaky").expect("status");
    assert_eq!(
        (status.failures, status.panics, status.consecutive_failures),
        (6, 1, 0)
    );
    let published = state
        .get::<ControllerStatusSpec>("flaky")
        .expect("status resource");
    assert_eq!(published.spec.last_error, None);
    assert_eq!(published.spec.failures, 6);
    handle.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn controllers_may_only_touch_what_they_declared() {
    let state = State::in_memory();
    let (probe, _runs) = Probe::scripted(
        "sneaky",
        vec![Input::weak::<StageA>()],
        vec![Output::shared::<StageB>()],
        Box::new(|ctx, run| {
            match run {
                1 => {
                    ctx.apply("ok", StageB(1))?;
                    ctx.add_finalizer::<StageA>("a")?;
                }
                2 => {
                    ctx.list::<Token>(&Selector::all())?;
                }
                _ => {
                    ctx.apply("nope", StageC(1))?;
                }
            }
            Ok(Requeue::OnChange)
        }),
    );
    let handle = start_alone(&state, RuntimeOptions::default(), probe);
    eventually("weak input refused", || {
        handle.status("sneaky").is_some_and(|s| s.failures == 1)
    })
    .await;
    let error = handle
        .status("sneaky")
        .and_then(|s| s.last_error)
        .expect("error");
    assert!(error.contains("weak input"), "{error}");
    assert_eq!(
        state
            .get::<StageB>("ok")
            .expect("declared output written")
            .spec,
        StageB(1)
    );
    eventually("undeclared read refused", || {
        handle.status("sneaky").is_some_and(|s| s.failures == 2)
    })
    .await;
    let error = handle
        .status("sneaky")
        .and_then(|s| s.last_error)
        .expect("error");
    assert!(error.contains("may not read"), "{error}");
    eventually("undeclared write refused", || {
        handle.status("sneaky").is_some_and(|s| s.failures == 3)
    })
    .await;
    let error = handle
        .status("sneaky")
        .and_then(|s| s.last_error)
        .expect("error");
    assert!(error.contains("may not write"), "{error}");
    assert!(state.get::<StageC>("nope").is_err());
    handle.shutdown().await;
}

#[test]
fn the_dependency_graph_is_data_and_dot() {
    let mut runtime = Runtime::new(State::in_memory(), RuntimeOptions::default());
    runtime.register(double()).expect("register");
    runtime.register(plus_one_if_even()).expect("register");
    let (probe, _) = Probe::new(
        "audit",
        vec![Input::weak::<StageC>()],
        vec![Output::shared::<Token>()],
    );
    runtime.register(probe).expect("register");
    let graph = runtime.graph();
    assert_eq!(
        graph.controllers.iter().collect::<Vec<_>>(),
        ["audit", "double", "plus-one"]
    );
    assert_eq!(graph.types.len(), 4);
    let has = |from: &str, to: &str, kind: EdgeKind| {
        graph
            .edges
            .iter()
            .any(|e| e.from == from && e.to == to && e.kind == kind)
    };
    assert!(has("A.test.skerry.dev", "double", EdgeKind::StrongInput));
    assert!(has(
        "double",
        "B.test.skerry.dev",
        EdgeKind::ExclusiveOutput
    ));
    assert!(has("C.test.skerry.dev", "audit", EdgeKind::WeakInput));
    assert!(has(
        "audit",
        "Tokens.test.skerry.dev",
        EdgeKind::SharedOutput
    ));
    assert_eq!(graph.edges.len(), 6);
    let dot = graph.to_dot();
    assert!(dot.starts_with("digraph runtime {"));
    assert!(
        dot.contains("\"t:A.test.skerry.dev\" -> \"c:double\" [style=solid];"),
        "{dot}"
    );
    assert!(
        dot.contains("\"c:audit\" -> \"t:Tokens.test.skerry.dev\" [style=dotted];"),
        "{dot}"
    );
    assert!(
        dot.contains("\"t:C.test.skerry.dev\" -> \"c:audit\" [style=dashed];"),
        "{dot}"
    );
}

#[tokio::test(start_paused = true)]
async fn requeue_now_runs_again_at_once() {
    let state = State::in_memory();
    let (probe, runs) = Probe::scripted(
        "stepper",
        vec![],
        vec![],
        Box::new(|_, run| {
            Ok(if run < 3 {
                Requeue::Now
            } else {
                Requeue::OnChange
            })
        }),
    );
    let start = Instant::now();
    let handle = start_alone(&state, RuntimeOptions::default(), probe);
    eventually("three runs", || runs.lock().expect("runs").len() == 3).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let runs = runs.lock().expect("runs").clone();
    assert_eq!(runs.len(), 3, "no run after OnChange without a change");
    assert!(
        runs.iter().all(|r| r.0 == start && r.1),
        "immediate full resyncs"
    );
    handle.shutdown().await;
}
