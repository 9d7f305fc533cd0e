//! The controller: the services in the config (`ActiveService`) are what the
//! supervisor runs. Each reconcile hands the whole set to the supervisor (new ones
//! start in dependency order, removed ones stop, changed ones restart; a service the
//! operator stopped is not started), then starts, restarts or ends each service's
//! health check loops and removes the resources of what went away.

use std::collections::BTreeMap;
use std::sync::Arc;

use skerry_runtime::{
    Controller, ControllerError, Input, Output, ReconcileContext, Requeue, Selector,
};
use skerry_supervisor as sup;
use skerryd_core::resources::{ActiveService, HealthCheckStatus};

use crate::book::{destroy, Ledger, Tracked, OWNER};
use crate::checks::{initial, CheckLoop};
use crate::convert::{max_age, service_spec, CheckProbe};
use crate::resources::{RunState, ServiceStatus};
use crate::Shared;
use skerry_runtime::ResourceSpec;
use skerryd_core::NewEvent;

/// Time between full resyncs when nothing changes.
pub const RESYNC: std::time::Duration = std::time::Duration::from_secs(30);

/// Reconciles the supervisor with the services in the config.
#[derive(Debug)]
pub struct ServicesController {
    pub(crate) shared: Arc<Shared>,
}

/// A configured service, converted.
struct Wanted {
    spec: sup::ServiceSpec,
    checks: Vec<(skerry_config::kinds::HealthCheck, CheckProbe)>,
    checks_from: crate::book::ChecksFrom,
}

/// A configured service, or why it cannot run. A check whose probe cannot be
/// resolved still runs, failing with the reason, so it is seen (and gates).
fn wanted(config: &skerry_config::kinds::ServiceConfig) -> Result<Wanted, String> {
    let spec = service_spec(config)?;
    let checks = config
        .health_checks
        .iter()
        .map(|check| {
            let probe = CheckProbe::from_config(&check.probe).unwrap_or_else(CheckProbe::Invalid);
            (check.clone(), probe)
        })
        .collect();
    Ok(Wanted {
        checks_from: (config.health_checks.clone(), spec.env.clone()),
        spec,
        checks,
    })
}

impl Controller for ServicesController {
    fn name(&self) -> &str {
        OWNER
    }

    fn inputs(&self) -> Vec<Input> {
        vec![Input::weak::<ActiveService>()]
    }

    fn outputs(&self) -> Vec<Output> {
        vec![
            Output::exclusive::<ServiceStatus>(),
            Output::exclusive::<HealthCheckStatus>(),
        ]
    }

    async fn reconcile(&mut self, ctx: &mut ReconcileContext) -> Result<Requeue, ControllerError> {
        let configs = ctx.list::<ActiveService>(&Selector::all())?;
        let mut wanted_set = BTreeMap::new();
        let mut rejected = BTreeMap::new();
        for resource in &configs {
            let config = &resource.spec.0;
            match wanted(config) {
                Ok(want) => {
                    wanted_set.insert(config.name.clone(), want);
                }
                Err(why) => {
                    rejected.insert(config.name.clone(), why);
                }
            }
        }
        // What depends on a service that cannot run cannot run either.
        loop {
            let blocked: Vec<(String, String)> = wanted_set
                .iter()
                .filter_map(|(name, want)| {
                    let dep = want
                        .spec
                        .depends_on
                        .iter()
                        .find(|d| !wanted_set.contains_key(*d))?;
                    Some((name.clone(), format!("depends on {dep}, which cannot run")))
                })
                .collect();
            if blocked.is_empty() {
                break;
            }
            for (name, why) in blocked {
                wanted_set.remove(&name);
                rejected.insert(name, why);
            }
        }
        self.shared.apply(wanted_set, &rejected).await?;
        // A periodic full resync (a no-op when nothing changed) also shows the runtime,
        // and a watchdog lease on this controller, that it is alive.
        Ok(Requeue::After(RESYNC))
    }
}

impl Shared {
    /// Makes the supervisor and the check loops follow `wanted`.
    async fn apply(
        &self,
        wanted: BTreeMap<String, Wanted>,
        rejected: &BTreeMap<String, String>,
    ) -> Result<(), ControllerError> {
        let ledger = &self.ledger;
        let mut guard = self.supervisor.lock().await;
        let Some(supervisor) = guard.as_mut() else {
            // The daemon is stopping: the stop hook took the supervisor.
            return Ok(());
        };
        // Tracked before the supervisor starts them, so their first events are kept.
        let held = {
            let mut book = ledger.book();
            book.held.retain(|name| wanted.contains_key(name));
            for name in wanted.keys() {
                if !book.services.contains_key(name) {
                    book.next_generation += 1;
                    let generation = book.next_generation;
                    book.services.insert(
                        name.clone(),
                        Tracked {
                            generation,
                            status: None,
                            checks_from: None,
                            verdicts: BTreeMap::new(),
                            tasks: Vec::new(),
                            gate: None,
                        },
                    );
                }
            }
            book.held.clone()
        };
        let specs = wanted.values().map(|w| w.spec.clone()).collect();
        let done = match supervisor.reconfigure(specs, &held).await {
            Ok(done) => done,
            Err(e) => {
                let mut book = ledger.book();
                // Drop what was tracked for this attempt only.
                book.services.retain(|_, t| t.status.is_some());
                return Err(Box::new(e));
            }
        };
        for name in &done.removed {
            self.forget_service(name);
        }
        for (name, why) in rejected {
            self.reject(name, why);
        }
        // Statuses of services gone from the config that never ran.
        let stale: Vec<String> = ledger
            .state
            .list::<ServiceStatus>(&Selector::all())
            .map(|list| {
                list.iter()
                    .map(|r| r.metadata.id.to_string())
                    .filter(|id| !wanted.contains_key(id) && !rejected.contains_key(id))
                    .collect()
            })
            .unwrap_or_default();
        for name in stale {
            self.forget_service(&name);
            destroy::<ServiceStatus>(&ledger.state, &name);
        }
        for (name, want) in &wanted {
            let rx = supervisor.watch_status(name).ok();
            let gate = supervisor.ready_gate(name).ok();
            {
                let mut book = ledger.book();
                let Some(tracked) = book.services.get_mut(name) else {
                    continue;
                };
                if tracked.status.is_none() {
                    tracked.status = rx;
                }
                if tracked.gate.is_none() {
                    tracked.gate = gate;
                }
            }
            self.follow_checks(name, want);
            ledger.refresh(name);
        }
        tracing::debug!(added = ?done.added, changed = ?done.changed, removed = ?done.removed, "services reconciled");
        Ok(())
    }

    /// Records that a configured service cannot run, and why.
    fn reject(&self, name: &str, why: &str) {
        let ledger = &self.ledger;
        let before = ledger
            .state
            .get::<ServiceStatus>(name)
            .ok()
            .map(|r| r.spec.clone());
        if before
            .as_ref()
            .is_some_and(|b| b.state == RunState::Failed && b.message == why && b.pid.is_none())
        {
            return;
        }
        let status = ServiceStatus {
            state: RunState::Failed,
            pid: None,
            restarts: 0,
            since: std::time::SystemTime::now(),
            message: why.to_owned(),
            health: crate::resources::ServiceHealth::NoCheck,
            exit: None,
            held: false,
        };
        if let Err(e) = ledger.state.apply_owned(name, Some(OWNER), status) {
            tracing::warn!(service = name, error = %e, "could not write the service status");
        }
        ledger.events.push(
            NewEvent::new("service.state", format!("service {name} cannot run: {why}"))
                .about(ServiceStatus::NAMESPACE, ServiceStatus::TYPE, name)
                .with("service", name)
                .with("state", RunState::Failed.as_str()),
        );
    }

    /// Forgets a removed service: its checks end, its resources go.
    fn forget_service(&self, name: &str) {
        let ledger = &self.ledger;
        let mut book = ledger.book();
        let Some(tracked) = book.services.remove(name) else {
            return;
        };
        drop(tracked.tasks);
        for check in tracked.verdicts.keys() {
            ledger.forget_check(&mut book, name, check);
        }
        if let Some((checks, _)) = &tracked.checks_from {
            for check in checks {
                ledger.forget_check(&mut book, name, &check.name);
            }
        }
        book.held.remove(name);
        destroy::<ServiceStatus>(&ledger.state, name);
        ledger.events.push(
            NewEvent::new(
                "service.state",
                format!("service {name}: stopped, removed from the config"),
            )
            .about(ServiceStatus::NAMESPACE, ServiceStatus::TYPE, name)
            .with("service", name)
            .with("state", RunState::Stopped.as_str()),
        );
    }

    /// (Re)starts the check loops of `name` when its checks or environment changed.
    fn follow_checks(&self, name: &str, want: &Wanted) {
        let ledger = &self.ledger;
        let (generation, old) = {
            let mut book = ledger.book();
            let Some(tracked) = book.services.get_mut(name) else {
                return;
            };
            if tracked.checks_from.as_ref() == Some(&want.checks_from) {
                return;
            }
            // A new generation: results of the old loops still in flight are dropped.
            let old = tracked.checks_from.replace(want.checks_from.clone());
            tracked.tasks.clear();
            tracked.verdicts.clear();
            if let Some(gate) = &tracked.gate {
                gate.set(false);
            }
            book.next_generation += 1;
            let generation = book.next_generation;
            if let Some(tracked) = book.services.get_mut(name) {
                tracked.generation = generation;
            }
            (generation, old)
        };
        let keep: Vec<&str> = want.checks.iter().map(|(c, _)| c.name.as_str()).collect();
        let mut book = ledger.book();
        if let Some((checks, _)) = old {
            for check in checks {
                let id = format!("{name}/{}", check.name);
                if !keep.contains(&check.name.as_str()) {
                    ledger.forget_check(&mut book, name, &check.name);
                } else if !want
                    .checks
                    .iter()
                    .any(|(c, _)| c.name == check.name && c.critical)
                {
                    Ledger::retire_report(&mut book, &id);
                }
            }
        }
        drop(book);
        // Every check starts unknown, recorded before its loop can report.
        let mut loops = Vec::new();
        {
            let mut book = ledger.book();
            let Some(tracked) = book.services.get_mut(name) else {
                return;
            };
            if tracked.generation != generation {
                return;
            }
            for (check, _) in &want.checks {
                let status = initial(check);
                tracked.verdicts.insert(check.name.clone(), status.state);
                let id = format!("{name}/{}", check.name);
                if let Err(e) = ledger.state.apply_owned(&id, Some(OWNER), status) {
                    tracing::warn!(check = %id, error = %e, "could not write the health check status");
                }
            }
        }
        for (check, probe) in &want.checks {
            let id = format!("{name}/{}", check.name);
            let report = if check.critical {
                match ledger.report_for(&id, max_age(check)) {
                    Ok(report) => Some(report),
                    Err(e) => {
                        tracing::error!(check = %id, error = %e, "the watchdog refused the check");
                        None
                    }
                }
            } else {
                None
            };
            loops.push(
                CheckLoop {
                    ledger: ledger.clone(),
                    service: name.to_owned(),
                    generation,
                    check: check.clone(),
                    probe: probe.clone(),
                    env: want.spec.env.clone(),
                    report,
                }
                .spawn(),
            );
        }
        let mut book = ledger.book();
        match book.services.get_mut(name) {
            Some(tracked) if tracked.generation == generation => tracked.tasks = loops,
            // Replaced or removed meanwhile: these loops end here.
            _ => drop(loops),
        }
    }
}
