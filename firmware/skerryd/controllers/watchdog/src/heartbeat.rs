//! `watchdog-heartbeat`: proves the runtime still runs controllers. It requeues itself
//! every interval and renews its lease inside reconcile, so a stuck runtime or executor
//! stops the renewals. It also renews one lease per critical controller, only while that
//! controller is not stuck inside a reconcile for longer than the deadline.

use std::collections::BTreeMap;

use skerry_runtime::{
    Activity, Controller, ControllerError, Input, Output, ReconcileContext, Requeue,
};
use skerry_watchdog::gate::{Lease, Vitals};

use crate::options::{CriticalControllers, Tuning, IDLE_POLL};
use crate::SharedTuning;

/// The heartbeat controller's name.
pub(crate) const NAME: &str = "watchdog-heartbeat";

pub(crate) struct Heartbeat {
    lease: Lease,
    vitals: Vitals,
    activity: Activity,
    critical: CriticalControllers,
    tuning: SharedTuning,
    applied: Option<Tuning>,
    controllers: BTreeMap<String, Lease>,
}

impl Heartbeat {
    pub(crate) fn new(
        lease: Lease,
        vitals: Vitals,
        activity: Activity,
        critical: CriticalControllers,
        tuning: SharedTuning,
    ) -> Self {
        Self {
            lease,
            vitals,
            activity,
            critical,
            tuning,
            applied: None,
            controllers: BTreeMap::new(),
        }
    }

    /// The names to watch: the critical ones the runtime knows, and the named ones it
    /// does not (they are never renewed).
    fn watched(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .activity
            .snapshot()
            .into_iter()
            .map(|(name, _)| name)
            .filter(|name| name != NAME && self.critical.includes(name))
            .collect();
        if let CriticalControllers::Named(named) = &self.critical {
            for name in named {
                if !names.contains(name) {
                    names.push(name.clone());
                }
            }
        }
        names
    }

    fn beat(&mut self, tuning: Tuning) -> Result<(), ControllerError> {
        if self.applied != Some(tuning) {
            self.lease.set_deadline(tuning.deadline)?;
            for lease in self.controllers.values() {
                lease.set_deadline(tuning.reconcile)?;
            }
            self.applied = Some(tuning);
        }
        self.lease.renew();
        let now = tokio::time::Instant::now();
        for name in self.watched() {
            if !self.controllers.contains_key(&name) {
                let lease = self.vitals.controller(&name, tuning.reconcile)?;
                self.controllers.insert(name.clone(), lease);
            }
            let Some(activity) = self.activity.get(&name) else {
                continue;
            };
            let stuck = activity
                .reconciling_since
                .is_some_and(|since| now.saturating_duration_since(since) >= tuning.reconcile);
            if !stuck {
                self.controllers[&name].renew();
            }
        }
        Ok(())
    }
}

impl Controller for Heartbeat {
    fn name(&self) -> &str {
        NAME
    }

    fn inputs(&self) -> Vec<Input> {
        Vec::new()
    }

    fn outputs(&self) -> Vec<Output> {
        Vec::new()
    }

    async fn reconcile(&mut self, _: &mut ReconcileContext) -> Result<Requeue, ControllerError> {
        let tuning = *self.tuning.lock().unwrap_or_else(|p| p.into_inner());
        match tuning {
            None => Ok(Requeue::After(IDLE_POLL)),
            Some(tuning) => {
                self.beat(tuning)?;
                Ok(Requeue::After(tuning.interval))
            }
        }
    }
}
