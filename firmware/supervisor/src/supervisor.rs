//! The set of supervised services: validated together, started in dependency order
//! (each waits for its dependencies to be ready), stopped in reverse order, observed
//! through statuses, log rings and a numbered event channel.

use std::collections::{BTreeMap, BTreeSet};

use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;

use crate::error::SupervisorError;
use crate::logs::{LogLine, LogSource, LogStream, SharedRing};
use crate::order::StartOrder;
use crate::process::become_subreaper;
use crate::runner::{Dependency, EventBus, Runner};
use crate::spec::ServiceSpec;
use crate::status::{HealthState, ServiceEvent, ServiceState, ServiceStatus};

/// Supervisor-wide settings.
#[derive(Debug, Clone)]
pub struct SupervisorOptions {
    /// Events kept for a slow subscriber before it sees `Lagged` (and a gap in `seq`).
    pub event_capacity: usize,
    pub orphans: Orphans,
}

impl Default for SupervisorOptions {
    fn default() -> Self {
        SupervisorOptions {
            event_capacity: 1024,
            orphans: Orphans::BecomeSubreaper,
        }
    }
}

/// Who reaps what a service's leader leaves behind when it dies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Orphans {
    /// Make this process a child subreaper so the supervisor reaps them itself (what a
    /// daemon that is not PID 1 needs; harmless as PID 1).
    BecomeSubreaper,
    /// Leave them to PID 1 (they are still killed with their group).
    LeaveToInit,
}

/// Counters of one stream's ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LogStats {
    /// Heap bytes held: stored lines with overhead, and the pending buffer.
    pub held_bytes: usize,
    /// Lines stored since the service was registered, evicted ones included.
    pub total_lines: u64,
    /// Lines evicted to make room.
    pub dropped_lines: u64,
}

/// What a [`Supervisor::reconfigure`] changed, each list in the order it acted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reconfigured {
    /// New services, in start order.
    pub added: Vec<String>,
    /// Services whose spec changed (stopped, then started with the new spec), in
    /// start order.
    pub changed: Vec<String>,
    /// Services no longer in the set (stopped and forgotten), in stop order.
    pub removed: Vec<String>,
}

/// The caller's readiness verdict of a gated service (see [`ServiceSpec::gated`]):
/// its dependents start only while it is ready. Clones share the verdict.
#[derive(Debug, Clone)]
pub struct ReadyGate(std::sync::Arc<watch::Sender<bool>>);

impl ReadyGate {
    fn new() -> Self {
        ReadyGate(std::sync::Arc::new(watch::channel(false).0))
    }

    /// Declares the service ready (its checks pass) or not.
    pub fn set(&self, ready: bool) {
        self.0
            .send_if_modified(|now| std::mem::replace(now, ready) != ready);
    }

    /// The current verdict.
    pub fn get(&self) -> bool {
        *self.0.borrow()
    }
}

#[derive(Debug)]
struct Service {
    /// The caller's readiness verdict (used when the spec is gated).
    gate: ReadyGate,
    spec: ServiceSpec,
    /// Kept here so the status (restart count, last exit) outlives each runner.
    status_tx: watch::Sender<ServiceStatus>,
    status: watch::Receiver<ServiceStatus>,
    /// The current runner; `None` once it was stopped and awaited.
    run: Option<RunnerHandle>,
    stdout: SharedRing,
    stderr: SharedRing,
}

#[derive(Debug)]
struct RunnerHandle {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

/// Runs a validated set of services.
#[derive(Debug)]
pub struct Supervisor {
    order: StartOrder,
    services: BTreeMap<String, Service>,
    bus: EventBus,
}

impl Supervisor {
    /// Validates `specs` (each spec, duplicates, unknown dependencies, cycles) and
    /// starts every service's runner; nothing runs if anything is refused. Returns
    /// the supervisor and a subscription to its events from the first one. Outside a
    /// tokio runtime it refuses with `NoRuntime`.
    pub fn start(
        specs: Vec<ServiceSpec>,
        options: SupervisorOptions,
    ) -> Result<(Self, broadcast::Receiver<ServiceEvent>), SupervisorError> {
        let order = StartOrder::new(&specs)?;
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(SupervisorError::NoRuntime);
        }
        if options.orphans == Orphans::BecomeSubreaper {
            become_subreaper().map_err(|source| SupervisorError::Subreaper { source })?;
        }
        let bus = EventBus::new(options.event_capacity);
        let events = bus.subscribe();
        let mut by_name: BTreeMap<String, ServiceSpec> =
            specs.into_iter().map(|s| (s.name.clone(), s)).collect();
        let mut services: BTreeMap<String, Service> = BTreeMap::new();
        // In start order, so every dependency's status watch already exists.
        for name in order.start() {
            let Some(spec) = by_name.remove(name) else {
                continue;
            };
            let (status_tx, status) = watch::channel(initial_status(&spec));
            let stdout = SharedRing::new(LogStream::Stdout, spec.logs.clone());
            let stderr = SharedRing::new(LogStream::Stderr, spec.logs.clone());
            let mut service = Service {
                gate: ReadyGate::new(),
                spec,
                status_tx,
                status,
                run: None,
                stdout,
                stderr,
            };
            service.run = Some(spawn_runner(&service, &services, &bus));
            services.insert(name.clone(), service);
        }
        Ok((
            Supervisor {
                order,
                services,
                bus,
            },
            events,
        ))
    }

    /// Events from now on (`start` hands out a subscription taken before any runner
    /// ran, so that one misses nothing).
    pub fn subscribe(&self) -> broadcast::Receiver<ServiceEvent> {
        self.bus.subscribe()
    }

    /// Names in start order.
    pub fn start_order(&self) -> &[String] {
        self.order.start()
    }

    /// The spec a service runs with.
    pub fn spec(&self, name: &str) -> Result<&ServiceSpec, SupervisorError> {
        Ok(&self.service(name)?.spec)
    }

    /// The current status of one service.
    pub fn status(&self, name: &str) -> Result<ServiceStatus, SupervisorError> {
        Ok(self.service(name)?.status.borrow().clone())
    }

    /// Every service's status, in start order.
    pub fn statuses(&self) -> Vec<ServiceStatus> {
        self.order
            .start()
            .iter()
            .filter_map(|name| self.services.get(name))
            .map(|s| s.status.borrow().clone())
            .collect()
    }

    /// A watch on one service's status (what the skerryd wiring copies into its
    /// status resource).
    pub fn watch_status(
        &self,
        name: &str,
    ) -> Result<watch::Receiver<ServiceStatus>, SupervisorError> {
        Ok(self.service(name)?.status.clone())
    }

    /// Whether every critical health check currently passes (vacuously true with none).
    pub fn critical_checks_pass(&self) -> bool {
        self.services.values().all(|s| {
            let status = s.status.borrow();
            !status.critical || status.health == HealthState::Healthy
        })
    }

    /// The lines held for one stream of one service, oldest first.
    pub fn logs(&self, name: &str, stream: LogStream) -> Result<Vec<LogLine>, SupervisorError> {
        Ok(self.service(name)?.ring(stream).lock().lines())
    }

    /// Counters of one stream's ring.
    pub fn log_stats(&self, name: &str, stream: LogStream) -> Result<LogStats, SupervisorError> {
        let service = self.service(name)?;
        let ring = service.ring(stream).lock();
        Ok(LogStats {
            held_bytes: ring.held_bytes(),
            total_lines: ring.total_lines(),
            dropped_lines: ring.dropped(),
        })
    }

    /// Stops one service (SIGTERM, grace, SIGKILL to its group) and waits for its
    /// runner to end. Its dependents keep running; stopping a stopped service is a
    /// no-op.
    pub async fn stop_service(&mut self, name: &str) -> Result<(), SupervisorError> {
        if let Some(run) = self.service_mut(name)?.run.take() {
            stop_runner(run).await;
        }
        Ok(())
    }

    /// Starts a service whose runner has ended (stopped, or exited for good under its
    /// restart policy); it waits for its dependencies again. Refused while it runs.
    pub fn start_service(&mut self, name: &str) -> Result<(), SupervisorError> {
        let service = self.service(name)?;
        if service
            .run
            .as_ref()
            .is_some_and(|run| !run.task.is_finished())
        {
            return Err(SupervisorError::AlreadyRunning {
                service: name.to_string(),
            });
        }
        let run = spawn_runner(service, &self.services, &self.bus);
        self.service_mut(name)?.run = Some(run);
        Ok(())
    }

    /// Stops a service and starts it again.
    pub async fn restart_service(&mut self, name: &str) -> Result<(), SupervisorError> {
        self.stop_service(name).await?;
        self.start_service(name)
    }

    /// Makes `specs` the set of services, validated together as [`Supervisor::start`]
    /// does (nothing changes if it is refused). Services no longer in the set and
    /// services whose spec changed are stopped, dependents first; the removed ones are
    /// forgotten (their status and rings too); new and changed ones are started in the
    /// new dependency order, except those named in `held`, which are registered as
    /// `Stopped` until [`Supervisor::start_service`]. Unchanged services keep running;
    /// a changed one keeps its status watch (restart count) and its log rings.
    pub async fn reconfigure(
        &mut self,
        specs: Vec<ServiceSpec>,
        held: &BTreeSet<String>,
    ) -> Result<Reconfigured, SupervisorError> {
        let order = StartOrder::new(&specs)?;
        let mut by_name: BTreeMap<String, ServiceSpec> =
            specs.into_iter().map(|s| (s.name.clone(), s)).collect();
        let mut done = Reconfigured::default();
        let old_stop: Vec<String> = self.order.stop().cloned().collect();
        let mut changed = BTreeSet::new();
        for name in &old_stop {
            let Some(service) = self.services.get_mut(name) else {
                continue;
            };
            let goes = match by_name.get(name) {
                None => true,
                Some(spec) if *spec != service.spec => {
                    changed.insert(name.clone());
                    true
                }
                Some(_) => false,
            };
            if goes {
                if let Some(run) = service.run.take() {
                    stop_runner(run).await;
                }
            }
            if !by_name.contains_key(name) {
                self.services.remove(name);
                done.removed.push(name.clone());
            }
        }
        let mut start = Vec::new();
        for name in order.start() {
            let Some(spec) = by_name.remove(name) else {
                continue;
            };
            match self.services.get_mut(name) {
                Some(service) if changed.contains(name) => {
                    service.status_tx.send_modify(|s| {
                        s.critical = spec.health.as_ref().is_some_and(|h| h.critical);
                    });
                    service.spec = spec;
                    done.changed.push(name.clone());
                    start.push(name.clone());
                }
                Some(_) => {}
                None => {
                    let mut status = initial_status(&spec);
                    if held.contains(name) {
                        status.state = ServiceState::Stopped;
                    }
                    let (status_tx, status) = watch::channel(status);
                    let service = Service {
                        gate: ReadyGate::new(),
                        stdout: SharedRing::new(LogStream::Stdout, spec.logs.clone()),
                        stderr: SharedRing::new(LogStream::Stderr, spec.logs.clone()),
                        spec,
                        status_tx,
                        status,
                        run: None,
                    };
                    self.services.insert(name.clone(), service);
                    done.added.push(name.clone());
                    start.push(name.clone());
                }
            }
        }
        self.order = order;
        for name in start.iter().filter(|name| !held.contains(*name)) {
            if let Some(service) = self.services.get(name) {
                let run = spawn_runner(service, &self.services, &self.bus);
                if let Some(service) = self.services.get_mut(name) {
                    service.run = Some(run);
                }
            }
        }
        Ok(done)
    }

    /// A reader of one service's stdout and stderr rings that does not borrow the
    /// supervisor (for a Logs call that follows).
    pub fn log_source(&self, name: &str) -> Result<LogSource, SupervisorError> {
        let service = self.service(name)?;
        Ok(LogSource::new(&service.stdout, &service.stderr))
    }

    /// The readiness gate of a service (what its dependents wait on when its spec is
    /// gated); it lives as long as the service stays registered.
    pub fn ready_gate(&self, name: &str) -> Result<ReadyGate, SupervisorError> {
        Ok(self.service(name)?.gate.clone())
    }

    /// Whether a service of that name is registered.
    pub fn contains(&self, name: &str) -> bool {
        self.services.contains_key(name)
    }

    /// Stops every service, dependents before their dependencies, each with its own
    /// grace period, and waits for each runner to finish.
    pub async fn shutdown(mut self) {
        let order: Vec<String> = self.order.stop().cloned().collect();
        for name in order {
            let Some(service) = self.services.get_mut(&name) else {
                continue;
            };
            if let Some(run) = service.run.take() {
                stop_runner(run).await;
            }
        }
    }

    fn service(&self, name: &str) -> Result<&Service, SupervisorError> {
        self.services
            .get(name)
            .ok_or_else(|| SupervisorError::NoSuchService {
                service: name.to_string(),
            })
    }

    fn service_mut(&mut self, name: &str) -> Result<&mut Service, SupervisorError> {
        self.services
            .get_mut(name)
            .ok_or_else(|| SupervisorError::NoSuchService {
                service: name.to_string(),
            })
    }
}

impl Service {
    fn ring(&self, stream: LogStream) -> &SharedRing {
        match stream {
            LogStream::Stdout => &self.stdout,
            LogStream::Stderr => &self.stderr,
        }
    }
}

impl Drop for Supervisor {
    /// Dropped without `shutdown`: runners are aborted; each drops its child, whose
    /// group guard kills the group, and tokio reaps the leader.
    fn drop(&mut self) {
        for service in self.services.values() {
            if let Some(run) = &service.run {
                run.task.abort();
            }
        }
    }
}

/// Starts a runner for `service`, its dependencies looked up in `services`.
fn spawn_runner(
    service: &Service,
    services: &BTreeMap<String, Service>,
    bus: &EventBus,
) -> RunnerHandle {
    let dependencies = service
        .spec
        .depends_on
        .iter()
        .filter_map(|dep| {
            let dependency = services.get(dep)?;
            Some(Dependency {
                name: dep.clone(),
                has_check: dependency.spec.health.is_some(),
                status: dependency.status.clone(),
                gate: dependency.spec.gated.then(|| dependency.gate.0.subscribe()),
            })
        })
        .collect();
    let (stop, stop_rx) = watch::channel(false);
    let runner = Runner {
        spec: service.spec.clone(),
        dependencies,
        status: service.status_tx.clone(),
        bus: bus.clone(),
        stdout: service.stdout.clone(),
        stderr: service.stderr.clone(),
        stop: stop_rx,
    };
    RunnerHandle {
        stop,
        task: tokio::spawn(runner.run()),
    }
}

async fn stop_runner(run: RunnerHandle) {
    run.stop.send_replace(true);
    // A runner that panicked has already dropped its child, whose group guard killed
    // the group; there is nothing left to stop.
    let _ = run.task.await;
}

fn initial_status(spec: &ServiceSpec) -> ServiceStatus {
    let state = if spec.depends_on.is_empty() {
        ServiceState::Starting
    } else {
        ServiceState::Waiting {
            on: spec.depends_on.clone(),
        }
    };
    ServiceStatus {
        name: spec.name.clone(),
        state,
        health: if spec.health.is_some() {
            HealthState::Unknown
        } else {
            HealthState::NoCheck
        },
        critical: spec.health.as_ref().is_some_and(|h| h.critical),
        restarts: 0,
        last_exit: None,
        last_error: None,
    }
}
