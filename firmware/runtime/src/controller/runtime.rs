//! [`Runtime`]: registers controllers (refusing conflicting output ownership at once,
//! and claiming exclusive outputs in the state so it refuses other writers) and starts
//! them; [`RuntimeHandle`]: status, triggers, graph and shutdown.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::activity::Activity;
use super::graph::DependencyGraph;
use super::runner::{self, RunnerEnv, Trigger};
use super::status::ControllerStatus;
use super::{Controller, Input, Output, OutputOwnership};
use crate::error::RegistrationError;
use crate::state::State;

/// Tuning of the runtime.
#[derive(Debug, Clone, Copy)]
pub struct RuntimeOptions {
    /// Backoff after the first failure; doubles per consecutive failure.
    pub backoff_base: Duration,
    /// Longest backoff.
    pub backoff_max: Duration,
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        RuntimeOptions {
            backoff_base: Duration::from_millis(100),
            backoff_max: Duration::from_secs(30),
        }
    }
}

type Starter = Box<dyn FnOnce(RunnerEnv) -> Vec<JoinHandle<()>> + Send>;

struct Registration {
    name: Arc<str>,
    inputs: Vec<Input>,
    outputs: Vec<Output>,
    start: Starter,
}

/// Controllers registered on a state, not yet running.
pub struct Runtime {
    state: State,
    options: RuntimeOptions,
    registrations: Vec<Registration>,
    activity: Activity,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("options", &self.options)
            .field(
                "controllers",
                &self
                    .registrations
                    .iter()
                    .map(|r| &*r.name)
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl Runtime {
    /// A runtime over `state`.
    pub fn new(state: State, options: RuntimeOptions) -> Self {
        Runtime {
            state,
            options,
            registrations: Vec::new(),
            activity: Activity::default(),
        }
    }

    /// When each controller (registered now or later) last reconciled and whether it is
    /// inside a reconcile: the watchdog reads it to tell a stuck controller.
    pub fn activity(&self) -> Activity {
        self.activity.clone()
    }

    /// Registers a controller. Fails if its name is taken, or if it claims an output
    /// type another controller already writes in a conflicting way.
    pub fn register<C: Controller>(&mut self, controller: C) -> Result<(), RegistrationError> {
        let name: Arc<str> = Arc::from(controller.name());
        let inputs = controller.inputs();
        let outputs = controller.outputs();
        self.check(&name, &inputs, &outputs)?;
        self.claim(&name, &outputs)?;
        self.activity.registered(&name);
        let start: Starter = Box::new(move |env| runner::spawn(controller, env));
        self.registrations.push(Registration {
            name,
            inputs,
            outputs,
            start,
        });
        Ok(())
    }

    fn check(
        &self,
        name: &str,
        inputs: &[Input],
        outputs: &[Output],
    ) -> Result<(), RegistrationError> {
        if self.registrations.iter().any(|r| &*r.name == name) {
            return Err(RegistrationError::DuplicateName {
                name: name.to_owned(),
            });
        }
        for output in outputs {
            if inputs
                .iter()
                .any(|i| i.type_name == output.type_name && i.namespace == output.namespace)
            {
                return Err(RegistrationError::InputIsOutput {
                    controller: name.to_owned(),
                    type_name: output.type_name.to_owned(),
                });
            }
            for existing in &self.registrations {
                let Some(theirs) = existing
                    .outputs
                    .iter()
                    .find(|o| o.type_name == output.type_name && o.namespace == output.namespace)
                else {
                    continue;
                };
                match (output.ownership, theirs.ownership) {
                    (OutputOwnership::Exclusive, _) => {
                        return Err(RegistrationError::ExclusiveConflict {
                            controller: name.to_owned(),
                            type_name: output.type_name.to_owned(),
                            existing: existing.name.to_string(),
                        })
                    }
                    (OutputOwnership::Shared, OutputOwnership::Exclusive) => {
                        return Err(RegistrationError::SharedOnExclusive {
                            controller: name.to_owned(),
                            type_name: output.type_name.to_owned(),
                            existing: existing.name.to_string(),
                        })
                    }
                    (OutputOwnership::Shared, OutputOwnership::Shared) => {}
                }
            }
        }
        Ok(())
    }

    /// Claims the exclusive outputs in the state itself, so that a write by anyone
    /// else (a client, another runtime on the same state) is refused there too.
    fn claim(&self, name: &str, outputs: &[Output]) -> Result<(), RegistrationError> {
        let exclusive: Vec<&Output> = outputs
            .iter()
            .filter(|o| o.ownership == OutputOwnership::Exclusive)
            .collect();
        for (done, output) in exclusive.iter().enumerate() {
            if let Err(existing) =
                self.state
                    .claim_exclusive(output.namespace, output.type_name, name)
            {
                for claimed in &exclusive[..done] {
                    self.state
                        .release_exclusive(claimed.namespace, claimed.type_name, name);
                }
                return Err(RegistrationError::ExclusiveConflict {
                    controller: name.to_owned(),
                    type_name: output.type_name.to_owned(),
                    existing,
                });
            }
        }
        Ok(())
    }

    /// The dependency graph of the registered controllers.
    pub fn graph(&self) -> DependencyGraph {
        let mut graph = DependencyGraph::default();
        for r in &self.registrations {
            graph.controllers.insert(r.name.to_string());
            for input in &r.inputs {
                graph.add_input(&r.name, input.type_name, input.strength);
            }
            for output in &r.outputs {
                graph.add_output(&r.name, output.type_name, output.ownership);
            }
        }
        graph
    }

    /// Starts every controller on the current tokio runtime.
    pub fn start(mut self) -> RuntimeHandle {
        let graph = self.graph();
        let registrations = std::mem::take(&mut self.registrations);
        let claims = registrations
            .iter()
            .flat_map(|r| {
                r.outputs
                    .iter()
                    .filter(|o| o.ownership == OutputOwnership::Exclusive)
                    .map(|o| (*o, r.name.clone()))
            })
            .collect();
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let mut statuses = BTreeMap::new();
        let mut triggers = BTreeMap::new();
        let mut tasks = Vec::new();
        for r in registrations {
            let status = Arc::new(Mutex::new(ControllerStatus {
                name: r.name.to_string(),
                ..ControllerStatus::default()
            }));
            let trigger = Arc::new(Trigger::default());
            statuses.insert(r.name.to_string(), status.clone());
            triggers.insert(r.name.to_string(), trigger.clone());
            let env = RunnerEnv {
                state: self.state.clone(),
                name: r.name.clone(),
                inputs: Arc::from(r.inputs),
                outputs: Arc::from(r.outputs),
                options: self.options,
                status,
                trigger,
                shutdown: shutdown_rx.clone(),
                activity: self.activity.clone(),
            };
            tasks.extend((r.start)(env));
        }
        RuntimeHandle {
            graph,
            statuses,
            triggers,
            shutdown: shutdown_tx,
            tasks,
            state: self.state.clone(),
            claims,
        }
    }
}

impl Drop for Runtime {
    /// A runtime dropped without starting gives its exclusive outputs back.
    fn drop(&mut self) {
        for r in &self.registrations {
            for output in &r.outputs {
                if output.ownership == OutputOwnership::Exclusive {
                    self.state
                        .release_exclusive(output.namespace, output.type_name, &r.name);
                }
            }
        }
    }
}

/// Running controllers.
#[derive(Debug)]
pub struct RuntimeHandle {
    graph: DependencyGraph,
    statuses: BTreeMap<String, Arc<Mutex<ControllerStatus>>>,
    triggers: BTreeMap<String, Arc<Trigger>>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    state: State,
    /// Exclusive outputs claimed in the state, given back at shutdown.
    claims: Vec<(Output, Arc<str>)>,
}

impl RuntimeHandle {
    /// The dependency graph.
    pub fn graph(&self) -> &DependencyGraph {
        &self.graph
    }

    /// A snapshot of every controller's status, by name.
    pub fn statuses(&self) -> Vec<ControllerStatus> {
        self.statuses
            .values()
            .map(|s| s.lock().unwrap_or_else(|p| p.into_inner()).clone())
            .collect()
    }

    /// One controller's status.
    pub fn status(&self, name: &str) -> Option<ControllerStatus> {
        self.statuses
            .get(name)
            .map(|s| s.lock().unwrap_or_else(|p| p.into_inner()).clone())
    }

    /// Asks a controller for a full reconcile now (an explicit requeue from outside,
    /// e.g. a signal). Returns false if no controller has that name.
    pub fn trigger(&self, name: &str) -> bool {
        match self.triggers.get(name) {
            Some(trigger) => {
                trigger.request_full();
                true
            }
            None => false,
        }
    }

    /// Stops every controller (after its current reconcile) and waits for them.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        for task in self.tasks {
            // A controller task that panicked outside reconcile has nothing left to
            // clean up; its status already shows its last error.
            let _ = task.await;
        }
        for (output, owner) in &self.claims {
            self.state
                .release_exclusive(output.namespace, output.type_name, owner);
        }
    }
}
