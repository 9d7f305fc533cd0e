//! skerryd's services and health subsystem. The services in the config in effect
//! (`ActiveService`, namespace `config`) are what the supervisor runs: the
//! [`ServicesController`] hands it the set on every change (new services start in
//! dependency order, removed ones stop with their process group, changed ones
//! restart), and every state change becomes the service's [`ServiceStatus`]
//! (namespace `services`) and a `service.state` event. Each service's health checks
//! run here: their results are `HealthCheckStatus` resources (namespace `health`, id
//! `SERVICE/CHECK`), a change of verdict is a `health.changed` event, and a critical
//! check reports to the watchdog's vitals on every result.
//!
//! The API reaches it through [`ServiceOps`] (list, start, stop, restart, logs,
//! health). A service the operator stopped stays stopped, through config changes,
//! until the operator starts it. At daemon stop a stop hook stops every service,
//! dependents first.
//!
//! Layout: `resources` (the status type), `convert` (config to supervisor spec and
//! probes, supervisor state to status), `book` (tracking and every resource write),
//! `checks` (the check loops), `controller`, `api` (the `ServiceOps`).

mod api;
mod book;
mod checks;
mod controller;
pub mod convert;
pub mod resources;

use std::sync::Arc;

use skerry_runtime::Runtime;
use skerry_supervisor::{Supervisor, SupervisorOptions};
use skerryd_core::{Context, ServiceOps};
use tokio::sync::broadcast;

pub use api::{MAX_ID_BYTES, MAX_TAIL_LINES};
pub use book::OWNER;
pub use controller::{ServicesController, RESYNC};
pub use resources::{RunState, ServiceHealth, ServiceStatus, SERVICES_NAMESPACE};

use book::Ledger;

/// What the controller, the API and the stop hook share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) ledger: Ledger,
    /// `None` once the stop hook stopped every service.
    pub(crate) supervisor: tokio::sync::Mutex<Option<Supervisor>>,
    pub(crate) stopping: tokio::sync::watch::Receiver<bool>,
}

/// Registers the services controller on `runtime`, starts the (empty) supervisor and
/// the task that turns its events into status resources, and adds the stop hook that
/// stops every service. Must be called inside a tokio runtime.
pub fn register(runtime: &mut Runtime, context: &Context) -> anyhow::Result<Arc<dyn ServiceOps>> {
    let (supervisor, events) = Supervisor::start(Vec::new(), SupervisorOptions::default())?;
    let shared = Arc::new(Shared {
        ledger: Ledger::new(
            context.state.clone(),
            context.events.clone(),
            context.vitals.clone(),
        ),
        supervisor: tokio::sync::Mutex::new(Some(supervisor)),
        stopping: context.stopping.clone(),
    });
    runtime.register(ServicesController {
        shared: shared.clone(),
    })?;
    tokio::spawn(pump(shared.ledger.clone(), events));
    let hook = shared.clone();
    context
        .stop_hooks
        .add("services", async move { hook.stop_all().await });
    Ok(Arc::new(api::Services { shared }))
}

/// Copies the supervisor's state changes into the status resources, in order; after
/// a lag it rewrites every status from the current state.
async fn pump(ledger: Ledger, mut events: broadcast::Receiver<skerry_supervisor::ServiceEvent>) {
    loop {
        match events.recv().await {
            Ok(event) => ledger.publish_state(&event.service, &event.state),
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                tracing::warn!(missed, "service events lagged; rewriting every status");
                let names: Vec<String> = ledger.book().services.keys().cloned().collect();
                for name in names {
                    ledger.refresh(&name);
                }
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

impl Shared {
    /// Stops every service (dependents first) and every check loop; afterwards the
    /// controller and the API leave the processes alone.
    pub(crate) async fn stop_all(&self) {
        let supervisor = self.supervisor.lock().await.take();
        if let Some(supervisor) = supervisor {
            supervisor.shutdown().await;
        }
        let mut book = self.ledger.book();
        for tracked in book.services.values_mut() {
            tracked.tasks.clear();
        }
        tracing::info!("every service is stopped");
    }
}
