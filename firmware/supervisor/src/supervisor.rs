//! The set of supervised services: validated together, started in dependency order
//! (each waits for its dependencies to be ready), stopped in reverse order, observed
//! through statuses, log rings and a numbered event channel.

use std::collections::BTreeMap;

use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;

use crate::error::SupervisorError;
use crate::logs::{LogLine, LogStream, SharedRing};
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

#[derive(Debug)]
struct Service {
    status: watch::Receiver<ServiceStatus>,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
    stdout: SharedRing,
    stderr: SharedRing,
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
    /// the supervisor and a subscription to its events from the first one. Must be
    /// called inside a tokio runtime.
    pub fn start(
        specs: Vec<ServiceSpec>,
        options: SupervisorOptions,
    ) -> Result<(Self, broadcast::Receiver<ServiceEvent>), SupervisorError> {
        let order = StartOrder::new(&specs)?;
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
            let dependencies = spec
                .depends_on
                .iter()
                .filter_map(|dep| {
                    let service = services.get(dep)?;
                    Some(Dependency {
                        name: dep.clone(),
                        has_check: service.status.borrow().health != HealthState::NoCheck,
                        status: service.status.clone(),
                    })
                })
                .collect();
            let (status_tx, status_rx) = watch::channel(initial_status(&spec));
            let (stop_tx, stop_rx) = watch::channel(false);
            let stdout = SharedRing::new(LogStream::Stdout, spec.logs.clone());
            let stderr = SharedRing::new(LogStream::Stderr, spec.logs.clone());
            let runner = Runner {
                spec,
                dependencies,
                status: status_tx,
                bus: bus.clone(),
                stdout: stdout.clone(),
                stderr: stderr.clone(),
                stop: stop_rx,
            };
            let task = tokio::spawn(runner.run());
            services.insert(
                name.clone(),
                Service {
                    status: status_rx,
                    stop: stop_tx,
                    task: Some(task),
                    stdout,
                    stderr,
                },
            );
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
        let service = self.service(name)?;
        let ring = match stream {
            LogStream::Stdout => &service.stdout,
            LogStream::Stderr => &service.stderr,
        };
        Ok(ring.lock().lines())
    }

    /// Counters of one stream's ring.
    pub fn log_stats(&self, name: &str, stream: LogStream) -> Result<LogStats, SupervisorError> {
        let service = self.service(name)?;
        let ring = match stream {
            LogStream::Stdout => service.stdout.lock(),
            LogStream::Stderr => service.stderr.lock(),
        };
        Ok(LogStats {
            held_bytes: ring.held_bytes(),
            total_lines: ring.total_lines(),
            dropped_lines: ring.dropped(),
        })
    }

    /// Stops every service, dependents before their dependencies, each with its own
    /// grace period, and waits for each runner to finish.
    pub async fn shutdown(mut self) {
        let order: Vec<String> = self.order.stop().cloned().collect();
        for name in order {
            let Some(service) = self.services.get_mut(&name) else {
                continue;
            };
            service.stop.send_replace(true);
            if let Some(task) = service.task.take() {
                // A runner that panicked has already dropped its child, whose group
                // guard killed the group; there is nothing left to stop.
                let _ = task.await;
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
}

impl Drop for Supervisor {
    /// Dropped without `shutdown`: runners are aborted; each drops its child, whose
    /// group guard kills the group, and tokio reaps the leader.
    fn drop(&mut self) {
        for service in self.services.values() {
            if let Some(task) = &service.task {
                task.abort();
            }
        }
    }
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
