//! The runtime's activity table shows a controller stuck inside its reconcile, so the
//! watchdog can tell "idle" from "hung".

use std::sync::Arc;
use std::time::Duration;

use skerry_runtime::{
    Controller, ControllerError, Input, Output, ReconcileContext, Requeue, Runtime, RuntimeOptions,
    State,
};
use tokio::sync::Semaphore;

/// Each reconcile waits for one permit.
struct Gated(Arc<Semaphore>);

impl Controller for Gated {
    fn name(&self) -> &str {
        "gated"
    }
    fn inputs(&self) -> Vec<Input> {
        Vec::new()
    }
    fn outputs(&self) -> Vec<Output> {
        Vec::new()
    }
    async fn reconcile(&mut self, _: &mut ReconcileContext) -> Result<Requeue, ControllerError> {
        self.0.acquire().await?.forget();
        Ok(Requeue::OnChange)
    }
}

#[tokio::test(start_paused = true)]
async fn activity_shows_a_reconcile_in_progress_and_when_it_finished() {
    let permits = Arc::new(Semaphore::new(0));
    let mut runtime = Runtime::new(State::in_memory(), RuntimeOptions::default());
    let activity = runtime.activity();
    runtime.register(Gated(permits.clone())).unwrap();
    let registered = activity.get("gated").unwrap();
    assert_eq!(registered.reconciling_since, None);
    assert_eq!(registered.last_reconciled, None);
    assert!(activity.get("other").is_none());

    let handle = runtime.start();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let stuck = activity.get("gated").unwrap();
    let since = stuck.reconciling_since.expect("inside its first reconcile");
    assert!(since.elapsed() >= Duration::from_secs(5));
    assert_eq!(stuck.last_reconciled, None);

    permits.add_permits(1);
    tokio::time::sleep(Duration::from_millis(10)).await;
    let done = activity.get("gated").unwrap();
    assert_eq!(done.reconciling_since, None);
    assert!(done.last_reconciled.is_some());
    assert_eq!(activity.snapshot().len(), 1);
    handle.shutdown().await;
}
