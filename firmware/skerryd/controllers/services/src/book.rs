//! What the subsystem keeps between the supervisor and the resources: which services
//! are tracked (and which generation of each), which ones the operator stopped, the
//! health checks' verdicts and the watchdog reports. Every resource write goes through
//! here, under one lock, so a late status from a removed service or check is dropped
//! instead of bringing its resource back.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use skerry_runtime::ResourceSpec;
use skerry_runtime::State;
use skerry_supervisor as sup;
use skerry_watchdog::gate::{HealthReport, Vitals};
use skerryd_core::resources::{CheckState, HealthCheckStatus};
use skerryd_core::{EventLog, NewEvent};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::convert::run_state;
use crate::resources::{ServiceHealth, ServiceStatus};

/// The owner of this subsystem's resources (the controller's name).
pub const OWNER: &str = "services";

/// A task aborted when dropped.
#[derive(Debug)]
pub(crate) struct Task(pub(crate) JoinHandle<()>);

impl Drop for Task {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// One tracked service.
#[derive(Debug)]
pub(crate) struct Tracked {
    pub(crate) generation: u64,
    pub(crate) status: Option<watch::Receiver<sup::ServiceStatus>>,
    /// What its checks were started from (checks and environment).
    pub(crate) checks_from: Option<ChecksFrom>,
    /// Each check's verdict, by check name.
    pub(crate) verdicts: BTreeMap<String, CheckState>,
    pub(crate) tasks: Vec<Task>,
    /// What its dependents wait on: set while every check is healthy.
    pub(crate) gate: Option<sup::ReadyGate>,
}

/// The inputs of a service's check tasks; a change restarts them.
pub(crate) type ChecksFrom = (
    Vec<skerry_config::kinds::HealthCheck>,
    BTreeMap<String, String>,
);

/// A registered watchdog report (the vitals cannot forget one).
#[derive(Debug)]
pub(crate) struct Report {
    pub(crate) report: HealthReport,
    pub(crate) max_age: Duration,
    /// While no check runs under this name, a task passes it so a removed check
    /// stops gating the watchdog.
    pub(crate) retired: Option<Task>,
}

#[derive(Debug, Default)]
pub(crate) struct Book {
    pub(crate) services: BTreeMap<String, Tracked>,
    pub(crate) held: BTreeSet<String>,
    pub(crate) reports: BTreeMap<String, Report>,
    pub(crate) next_generation: u64,
}

/// The shared part: state, events, vitals and the book.
#[derive(Debug, Clone)]
pub(crate) struct Ledger {
    pub(crate) state: State,
    pub(crate) events: EventLog,
    pub(crate) vitals: Vitals,
    book: Arc<Mutex<Book>>,
}

fn worst(verdicts: &BTreeMap<String, CheckState>) -> ServiceHealth {
    if verdicts.is_empty() {
        ServiceHealth::NoCheck
    } else if verdicts.values().any(|v| *v == CheckState::Unhealthy) {
        ServiceHealth::Unhealthy
    } else if verdicts.values().any(|v| *v == CheckState::Unknown) {
        ServiceHealth::Unknown
    } else {
        ServiceHealth::Healthy
    }
}

impl Ledger {
    pub(crate) fn new(state: State, events: EventLog, vitals: Vitals) -> Self {
        Ledger {
            state,
            events,
            vitals,
            book: Arc::default(),
        }
    }

    pub(crate) fn book(&self) -> MutexGuard<'_, Book> {
        self.book.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The status resource a supervisor state gives, `since` kept when the state did
    /// not change.
    pub(crate) fn status_for(
        &self,
        book: &Book,
        name: &str,
        state: &sup::ServiceState,
    ) -> Option<ServiceStatus> {
        let tracked = book.services.get(name)?;
        let (restarts, last_error) = tracked.status.as_ref().map_or((0, None), |rx| {
            let s = rx.borrow();
            (s.restarts, s.last_error.clone())
        });
        let held = book.held.contains(name);
        let (run, pid, mut message, exit) = run_state(state, held);
        if let (sup::ServiceState::Exited { .. } | sup::ServiceState::BackingOff { .. }, Some(e)) =
            (state, last_error)
        {
            message = format!("{message}; last error: {e}");
        }
        let stored = self.state.get::<ServiceStatus>(name).ok();
        let since = match &stored {
            Some(old) if old.spec.state == run && old.spec.pid == pid => old.spec.since,
            _ => SystemTime::now(),
        };
        Some(ServiceStatus {
            state: run,
            pid,
            restarts,
            since,
            message,
            health: worst(&tracked.verdicts),
            exit: exit.or_else(|| stored.and_then(|s| s.spec.exit.clone())),
            held,
        })
    }

    /// Writes the status of `name` for `state` (a supervisor event's, or the current
    /// one) and records a `service.state` event when the state changed.
    pub(crate) fn publish_state(&self, name: &str, state: &sup::ServiceState) {
        let book = self.book();
        let Some(status) = self.status_for(&book, name, state) else {
            return;
        };
        let before = self.state.get::<ServiceStatus>(name).ok().map(|r| r.spec);
        if let Err(e) = self.state.apply_owned(name, Some(OWNER), status.clone()) {
            tracing::warn!(service = name, error = %e, "could not write the service status");
            return;
        }
        let moved = before
            .as_ref()
            .is_none_or(|b| b.state != status.state || b.pid != status.pid);
        if moved {
            let mut event = NewEvent::new(
                "service.state",
                format!("service {name}: {}", status.message),
            )
            .about(ServiceStatus::NAMESPACE, ServiceStatus::TYPE, name)
            .with("service", name)
            .with("state", status.state.as_str());
            if let sup::ServiceState::Exited { exit } = state {
                event = event.with("exit", crate::convert::exit_text(*exit));
            }
            if let Some(pid) = status.pid {
                event = event.with("pid", pid);
            }
            self.events.push(event);
        }
    }

    /// Rewrites the status of `name` from its current supervisor state.
    pub(crate) fn refresh(&self, name: &str) {
        let state = {
            let book = self.book();
            let Some(rx) = book.services.get(name).and_then(|t| t.status.as_ref()) else {
                return;
            };
            let state = rx.borrow().state.clone();
            state
        };
        self.publish_state(name, &state);
    }

    /// Records one check result if `generation` is still the service's; a change of
    /// verdict becomes a `health.changed` event and updates the service's health.
    pub(crate) fn record_check(
        &self,
        service: &str,
        generation: u64,
        check: &str,
        status: HealthCheckStatus,
    ) {
        let id = format!("{service}/{check}");
        let mut book = self.book();
        let Some(tracked) = book.services.get_mut(service) else {
            return;
        };
        if tracked.generation != generation {
            return;
        }
        let before = tracked.verdicts.insert(check.to_owned(), status.state);
        let health_before = worst(&{
            let mut old = tracked.verdicts.clone();
            if let Some(b) = before {
                old.insert(check.to_owned(), b);
            }
            old
        });
        let health_after = worst(&tracked.verdicts);
        if let Some(gate) = &tracked.gate {
            gate.set(health_after == ServiceHealth::Healthy);
        }
        if let Err(e) = self.state.apply_owned(&id, Some(OWNER), status.clone()) {
            tracing::warn!(check = %id, error = %e, "could not write the health check status");
        }
        if before.is_some_and(|b| b != status.state) {
            self.events.push(
                NewEvent::new(
                    "health.changed",
                    format!("health check {id} is {}", state_name(status.state)),
                )
                .about(HealthCheckStatus::NAMESPACE, HealthCheckStatus::TYPE, &id)
                .with("check", &id)
                .with("service", service)
                .with("state", state_name(status.state))
                .with("critical", status.critical)
                .with("message", &status.message),
            );
        }
        if health_before != health_after {
            if let Ok(mut stored) = self.state.get::<ServiceStatus>(service).map(|r| r.spec) {
                stored.health = health_after;
                if let Err(e) = self.state.apply_owned(service, Some(OWNER), stored) {
                    tracing::warn!(service, error = %e, "could not write the service health");
                }
            }
        }
    }

    /// The watchdog report of a critical check, registered once; a retired one is
    /// taken back into use.
    pub(crate) fn report_for(
        &self,
        id: &str,
        max_age: Duration,
    ) -> Result<HealthReport, skerry_watchdog::gate::VitalsError> {
        let mut book = self.book();
        if let Some(report) = book.reports.get_mut(id) {
            report.retired = None;
            if report.max_age != max_age {
                tracing::warn!(
                    check = id,
                    "the watchdog keeps the first max age of a check it was given"
                );
            }
            return Ok(report.report.clone());
        }
        let report = self.vitals.health_check(id, max_age)?;
        book.reports.insert(
            id.to_owned(),
            Report {
                report: report.clone(),
                max_age,
                retired: None,
            },
        );
        Ok(report)
    }

    /// Stops a report from gating the watchdog: no check of that name runs now.
    pub(crate) fn retire_report(book: &mut Book, id: &str) {
        let Some(report) = book.reports.get_mut(id) else {
            return;
        };
        if report.retired.is_some() {
            return;
        }
        let keep = report.report.clone();
        let every = (report.max_age / 2).max(Duration::from_millis(10));
        report.retired = Some(Task(tokio::spawn(async move {
            loop {
                keep.pass();
                tokio::time::sleep(every).await;
            }
        })));
    }

    /// Forgets a check: its resource goes, its watchdog report retires.
    pub(crate) fn forget_check(&self, book: &mut Book, service: &str, check: &str) {
        let id = format!("{service}/{check}");
        destroy::<HealthCheckStatus>(&self.state, &id);
        Self::retire_report(book, &id);
    }
}

/// Tears down and destroys one of our resources; a missing one is fine.
pub(crate) fn destroy<T: ResourceSpec>(state: &State, id: &str) {
    if state.get::<T>(id).is_err() {
        return;
    }
    let done = state
        .teardown::<T>(id, Some(OWNER))
        .and_then(|_| state.destroy::<T>(id, Some(OWNER)));
    if let Err(e) = done {
        tracing::warn!(id, type_name = T::TYPE, error = %e, "could not remove a resource");
    }
}

/// How a check state reads in events.
pub fn state_name(state: CheckState) -> &'static str {
    match state {
        CheckState::Unknown => "unknown",
        CheckState::Healthy => "healthy",
        CheckState::Unhealthy => "unhealthy",
    }
}
