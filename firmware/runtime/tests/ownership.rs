//! Exclusive outputs are enforced by the state itself, not only at registration: once
//! a controller registered a type as its exclusive output, a direct write by anyone
//! else (a client, another runtime) is refused, in the type's own namespace.

mod common;

use common::{StageA, StageB, StageC};
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex};

use skerry_runtime::{
    Controller, ControllerError, Input, Output, OutputOwnership, ReconcileContext,
    RegistrationError, Requeue, Resource, ResourceSpec, Runtime, RuntimeOptions, State, StateError,
    Transform,
};

fn owner_only(state: &State) -> Runtime {
    let mut runtime = Runtime::new(state.clone(), RuntimeOptions::default());
    runtime
        .register(Transform::new("double", |a: &Resource<StageA>| {
            Some(StageB(a.spec.0 * 2))
        }))
        .expect("registers");
    runtime
}

fn refused<T: std::fmt::Debug>(result: Result<T, StateError>, owner: &str) -> bool {
    matches!(result, Err(StateError::ExclusiveOutput { owner: ref o, .. }) if o == owner)
}

#[test]
fn direct_writes_to_an_exclusive_output_are_refused() {
    let state = State::in_memory();
    let runtime = owner_only(&state);

    assert!(refused(
        state.create(Resource::new("x", StageB(1))),
        "double"
    ));
    assert!(refused(
        state.create(Resource::new("x", StageB(1)).with_owner("intruder")),
        "double"
    ));
    assert!(refused(
        state.apply_owned("x", Some("intruder"), StageB(1)),
        "double"
    ));
    assert!(refused(state.apply_owned("x", None, StageB(1)), "double"));
    assert!(state.get::<StageB>("x").is_err(), "nothing was written");

    // The owner itself writes; nobody else may update, tear down or destroy.
    state
        .apply_owned("x", Some("double"), StageB(2))
        .expect("the owner writes");
    let mut stolen = state.get::<StageB>("x").expect("stored");
    stolen.metadata.owner = None;
    stolen.spec = StageB(99);
    assert!(refused(state.update(stolen), "double"));
    assert!(refused(state.teardown::<StageB>("x", None), "double"));
    assert!(refused(
        state.destroy::<StageB>("x", Some("intruder")),
        "double"
    ));
    assert_eq!(state.get::<StageB>("x").expect("kept").spec, StageB(2));
    // Finalizers are how other controllers hold a resource: still allowed.
    state
        .add_finalizer::<StageB>("x", "reader")
        .expect("finalizer");

    // Other types stay open.
    state
        .create(Resource::new("x", StageC(1)))
        .expect("an unclaimed type");

    // Unclaimed again once the runtime is gone.
    drop(runtime);
    state
        .apply_owned("y", Some("someone"), StageB(1))
        .expect("claim released");
}

#[tokio::test]
async fn a_started_runtime_keeps_the_claim_until_shutdown() {
    let state = State::in_memory();
    let handle = owner_only(&state).start();
    assert!(refused(
        state.create(Resource::new("x", StageB(1))),
        "double"
    ));
    handle.shutdown().await;
    state
        .create(Resource::new("x", StageB(1)))
        .expect("claim released at shutdown");
}

#[test]
fn a_second_runtime_on_the_same_state_cannot_claim_the_type() {
    let state = State::in_memory();
    let _first = owner_only(&state);
    let mut second = Runtime::new(state.clone(), RuntimeOptions::default());
    let result = second.register(Transform::new("triple", |a: &Resource<StageA>| {
        Some(StageB(a.spec.0 * 3))
    }));
    assert_eq!(
        result,
        Err(RegistrationError::ExclusiveConflict {
            controller: "triple".into(),
            type_name: StageB::TYPE.into(),
            existing: "double".into(),
        })
    );
}

/// The same type name in two namespaces: a claim on one leaves the other alone, and a
/// declaration for the other namespace gives no access to the claimed one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Route(u64);
impl ResourceSpec for Route {
    const TYPE: &'static str = "Routes.test.skerry.dev";
    const NAMESPACE: &'static str = "net";
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct GuestRoute(u64);
impl ResourceSpec for GuestRoute {
    const TYPE: &'static str = "Routes.test.skerry.dev";
    const NAMESPACE: &'static str = "guest";
}

#[test]
fn claims_are_per_namespace() {
    let state = State::in_memory();
    let mut runtime = Runtime::new(state.clone(), RuntimeOptions::default());
    runtime
        .register(Transform::new("routes", |a: &Resource<StageA>| {
            Some(Route(a.spec.0))
        }))
        .expect("registers");
    // A shared claim on the same type name in another namespace is no conflict...
    runtime
        .register(Transform::new("guest-routes", |a: &Resource<StageA>| {
            Some(GuestRoute(a.spec.0))
        }))
        .expect("another namespace");
    // ...and writes there are the other owner's business, not the first claim's.
    state
        .apply_owned("r", Some("guest-routes"), GuestRoute(1))
        .expect("guest owner writes");
    assert!(refused(
        state.apply_owned("r", Some("guest-routes"), Route(1)),
        "routes"
    ));
    assert!(refused(
        state.create(Resource::new("r", Route(1))),
        "routes"
    ));
}

/// Declares a shared output of `Routes` in the guest namespace, then writes the `net`
/// one: the declaration does not cover it.
struct WrongNamespace {
    result: Arc<Mutex<Option<String>>>,
}

impl Controller for WrongNamespace {
    fn name(&self) -> &str {
        "wrong-namespace"
    }
    fn inputs(&self) -> Vec<Input> {
        Vec::new()
    }
    fn outputs(&self) -> Vec<Output> {
        vec![Output {
            namespace: GuestRoute::NAMESPACE,
            type_name: Route::TYPE,
            ownership: OutputOwnership::Shared,
        }]
    }
    async fn reconcile(&mut self, ctx: &mut ReconcileContext) -> Result<Requeue, ControllerError> {
        let outcome = match ctx.apply("r", Route(1)) {
            Ok(applied) => format!("{applied:?}"),
            Err(error) => error.to_string(),
        };
        *self.result.lock().expect("result") = Some(outcome);
        Ok(Requeue::OnChange)
    }
}

#[tokio::test(start_paused = true)]
async fn a_declaration_in_another_namespace_gives_no_write_access() {
    let state = State::in_memory();
    let result = Arc::new(Mutex::new(None));
    let mut runtime = Runtime::new(state.clone(), RuntimeOptions::default());
    runtime
        .register(WrongNamespace {
            result: result.clone(),
        })
        .expect("registers");
    let handle = runtime.start();
    for _ in 0..100 {
        if result.lock().expect("result").is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let outcome = result.lock().expect("result").clone();
    assert!(
        outcome
            .as_deref()
            .is_some_and(|o| o.contains("did not declare")),
        "{outcome:?}"
    );
    assert!(state.get::<Route>("r").is_err(), "nothing was written");
    handle.shutdown().await;
}
