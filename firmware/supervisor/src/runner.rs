//! One task per service: wait until its dependencies are ready, spawn it, watch it
//! (exit, health, stop request), and restart it by policy after the backoff.

use std::process::Stdio;
use std::sync::{Arc, Mutex};

use tokio::sync::{broadcast, watch};
use tokio::time::Instant;

use crate::backoff::{restart_wanted, Backoff};
use crate::error::SpawnError;
use crate::health::run_health_loop;
use crate::logs::SharedRing;
use crate::probe::{probe, ProbeOutcome};
use crate::process::{kill_group, reap_group, spawn_in_group, stop_group, GroupGuard};
use crate::spec::ServiceSpec;
use crate::status::{ExitReason, HealthState, ServiceEvent, ServiceState, ServiceStatus};

/// Numbers events and sends them; the lock makes sequence order the send order.
#[derive(Debug, Clone)]
pub(crate) struct EventBus {
    inner: Arc<Mutex<u64>>,
    sender: broadcast::Sender<ServiceEvent>,
}

impl EventBus {
    pub(crate) fn new(capacity: usize) -> Self {
        let (sender, _) = broadcast::channel(capacity.max(1));
        EventBus {
            inner: Arc::new(Mutex::new(0)),
            sender,
        }
    }

    pub(crate) fn subscribe(&self) -> broadcast::Receiver<ServiceEvent> {
        self.sender.subscribe()
    }

    fn publish(&self, status: &ServiceStatus) {
        let mut seq = self
            .inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *seq += 1;
        // No subscriber is not an error: the status watch still has the state.
        let _ = self.sender.send(ServiceEvent {
            seq: *seq,
            service: status.name.clone(),
            state: status.state.clone(),
            health: status.health,
        });
    }
}

/// A dependency as its dependent sees it.
#[derive(Debug)]
pub(crate) struct Dependency {
    pub(crate) name: String,
    pub(crate) has_check: bool,
    pub(crate) status: watch::Receiver<ServiceStatus>,
    /// The caller's readiness verdict, for a gated dependency.
    pub(crate) gate: Option<watch::Receiver<bool>>,
}

/// What a runner reports through: the status watch and the event bus.
struct Reporter {
    status: watch::Sender<ServiceStatus>,
    bus: EventBus,
}

impl Reporter {
    fn update(&self, change: impl FnOnce(&mut ServiceStatus)) {
        self.status.send_modify(change);
        self.bus.publish(&self.status.borrow());
    }

    fn set(&self, state: ServiceState) {
        self.update(|s| s.state = state);
    }
}

/// Everything one runner task needs.
pub(crate) struct Runner {
    pub(crate) spec: ServiceSpec,
    pub(crate) dependencies: Vec<Dependency>,
    pub(crate) status: watch::Sender<ServiceStatus>,
    pub(crate) bus: EventBus,
    pub(crate) stdout: SharedRing,
    pub(crate) stderr: SharedRing,
    pub(crate) stop: watch::Receiver<bool>,
}

/// How one run of the process ended.
enum RunEnd {
    Exited(Option<ExitReason>),
    StopRequested(Option<ExitReason>),
}

impl Runner {
    pub(crate) async fn run(mut self) {
        let reporter = Reporter {
            status: self.status.clone(),
            bus: self.bus.clone(),
        };
        if !self.wait_for_dependencies(&reporter).await {
            reporter.set(ServiceState::Stopped);
            return;
        }
        let mut backoff = Backoff::new(self.spec.backoff.clone());
        let mut first = true;
        loop {
            // One event per state change: the restart count moves with `Starting`.
            let restarted = !first;
            first = false;
            reporter.update(|s| {
                s.restarts = s.restarts.saturating_add(u32::from(restarted));
                s.state = ServiceState::Starting;
            });
            let started = Instant::now();
            let exit = match self.spawn() {
                Err(error) => {
                    let message = error.to_string();
                    reporter.update(|s| {
                        s.last_error = Some(message.clone());
                        s.state = ServiceState::SpawnFailed { error: message };
                    });
                    None
                }
                Ok(child) => match self.supervise(child, &reporter).await {
                    RunEnd::Exited(exit) => exit,
                    RunEnd::StopRequested(_) => {
                        reporter.set(ServiceState::Stopped);
                        return;
                    }
                },
            };
            if !restart_wanted(self.spec.restart, exit) {
                return;
            }
            let delay = backoff.after_run(started.elapsed());
            let attempt = backoff.attempt();
            reporter.set(ServiceState::BackingOff {
                delay_ms: u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                attempt,
            });
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = stop_requested(&mut self.stop) => {
                    reporter.set(ServiceState::Stopped);
                    return;
                }
            }
        }
    }

    /// Waits until every dependency is ready; false if a stop came first.
    async fn wait_for_dependencies(&mut self, reporter: &Reporter) -> bool {
        if self.dependencies.is_empty() {
            return true;
        }
        let names = self.dependencies.iter().map(|d| d.name.clone()).collect();
        reporter.set(ServiceState::Waiting { on: names });
        for dep in &mut self.dependencies {
            let has_check = dep.has_check;
            tokio::select! {
                ready = dep.status.wait_for(|s| s.state.is_ready(has_check)) => {
                    // The dependency's runner is gone (supervisor shutting down).
                    if ready.is_err() {
                        return false;
                    }
                }
                _ = stop_requested(&mut self.stop) => return false,
            }
            if let Some(gate) = &mut dep.gate {
                tokio::select! {
                    ready = gate.wait_for(|ready| *ready) => {
                        if ready.is_err() {
                            return false;
                        }
                    }
                    _ = stop_requested(&mut self.stop) => return false,
                }
            }
        }
        true
    }

    fn spawn(&self) -> Result<tokio::process::Child, SpawnError> {
        let program = &self.spec.argv[0];
        let mut command = tokio::process::Command::new(program);
        command
            .args(&self.spec.argv[1..])
            .env_clear()
            .envs(&self.spec.env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(dir) = &self.spec.working_dir {
            // Checked first: spawn reports a missing directory as a missing program.
            match std::fs::metadata(dir) {
                Ok(meta) if meta.is_dir() => {}
                Ok(_) => {
                    return Err(SpawnError::WorkingDir {
                        dir: dir.clone(),
                        source: std::io::Error::other("not a directory"),
                    })
                }
                Err(source) => {
                    return Err(SpawnError::WorkingDir {
                        dir: dir.clone(),
                        source,
                    })
                }
            }
            command.current_dir(dir);
        }
        spawn_in_group(&mut command, program)
    }

    /// Watches one run: its exit, its health checks and a stop request.
    async fn supervise(&mut self, mut child: tokio::process::Child, reporter: &Reporter) -> RunEnd {
        let Some(pid) = child.id() else {
            let program = self.spec.argv[0].clone();
            reporter.update(|s| s.last_error = Some(SpawnError::NoPid { program }.to_string()));
            return RunEnd::Exited(None);
        };
        let _group = GroupGuard(Some(pid));
        if let Some(out) = child.stdout.take() {
            tokio::spawn(self.stdout.clone().capture(out));
        }
        if let Some(err) = child.stderr.take() {
            tokio::spawn(self.stderr.clone().capture(err));
        }
        let checked = self.spec.health.is_some();
        reporter.update(|s| {
            s.state = ServiceState::Running { pid };
            s.health = if checked {
                HealthState::Unknown
            } else {
                HealthState::NoCheck
            };
        });
        let check = self.spec.health.clone();
        let env = self.spec.env.clone();
        let dir = self.spec.working_dir.clone();
        let grace = self.spec.stop_grace();
        let health = async {
            match &check {
                Some(check) => {
                    run_health_loop(
                        check,
                        || probe(&check.kind, &env, dir.as_deref()),
                        |outcome, transition| {
                            report_probe(reporter, pid, outcome, transition.map(|t| t.to))
                        },
                    )
                    .await
                }
                None => std::future::pending().await,
            }
        };
        let end = tokio::select! {
            waited = child.wait() => RunEnd::Exited(waited.ok().map(ExitReason::from_status)),
            _ = health => RunEnd::Exited(None),
            _ = stop_requested(&mut self.stop) => {
                let status = stop_group(&mut child, pid, grace).await;
                RunEnd::StopRequested(status.map(ExitReason::from_status))
            }
        };
        // The leader is reaped: kill what it left running, reap what is ours.
        kill_group(pid, rustix::process::Signal::KILL);
        reap_group(pid).await;
        let (RunEnd::Exited(exit) | RunEnd::StopRequested(exit)) = &end;
        let exit = *exit;
        reporter.update(|s| {
            s.last_exit = exit;
            s.health = if checked {
                HealthState::Unknown
            } else {
                HealthState::NoCheck
            };
            s.state = match exit {
                Some(exit) => ServiceState::Exited { exit },
                None => ServiceState::Exited {
                    exit: ExitReason::Code(-1),
                },
            };
        });
        end
    }
}

fn report_probe(reporter: &Reporter, pid: u32, outcome: &ProbeOutcome, to: Option<HealthState>) {
    if let ProbeOutcome::Fail(message) = outcome {
        let message = message.clone();
        reporter
            .status
            .send_modify(|s| s.last_error = Some(message));
    }
    match to {
        Some(HealthState::Healthy) => reporter.update(|s| {
            s.health = HealthState::Healthy;
            s.state = ServiceState::Healthy { pid };
        }),
        Some(HealthState::Unhealthy) => reporter.update(|s| {
            s.health = HealthState::Unhealthy;
            s.state = ServiceState::Unhealthy { pid };
        }),
        _ => {}
    }
}

/// Resolves once a stop is requested (or the supervisor that could ask is gone).
async fn stop_requested(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}
