//! Probation: the controller that decides a trial, and mirrors the subsystem's state
//! into resources.
//!
//! The rule, decided here and documented for operators:
//! - every critical health check (a [`HealthCheckStatus`] with `critical`) must be
//!   healthy, all of them at once, without a break, for the configured probation time;
//!   then the slot is committed;
//! - a critical check that turns unhealthy fails the trial at once (it reached its
//!   failure threshold: it had its chance);
//! - the checks get as long again to become healthy: at start + 2 × probation without
//!   having held for the probation time, the trial fails, naming the checks that were
//!   not healthy;
//! - no critical check reported at all by then fails it too: a trial must prove itself,
//!   and a release that stops reporting health must not be committed for it.
//!
//! Each attempt of a trial (each boot of it) starts probation afresh.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use skerry_boot_state::SlotName;
use skerry_runtime::{
    Controller, ControllerError, Input, Output, ReconcileContext, Requeue, Selector,
};
use skerryd_core::resources::{ActiveUpdate, CheckState, HealthCheckStatus, SINGLETON};
use tokio::time::Instant;

use crate::flow;
use crate::history::{Decider, PendingTrial};
use crate::machine::Machine;
use crate::resources::{UpgradeHistoryEntry, UpgradePhaseName, UpgradeStatus};
use crate::CONTROLLER;

/// The probation time when no update source is configured on the trial.
pub const DEFAULT_PROBATION: Duration = Duration::from_secs(300);
/// The longest probation accepted (a longer one is cut to it).
pub const MAX_PROBATION: Duration = Duration::from_secs(7 * 24 * 3600);
/// How often probation looks again while it waits.
const TICK_MAX: Duration = Duration::from_secs(1);
const TICK_MIN: Duration = Duration::from_millis(20);

/// A trial being decided.
#[derive(Debug)]
pub(crate) struct Trial {
    pub pending: PendingTrial,
    pub slot: SlotName,
    pub started: Instant,
    healthy_since: Option<Instant>,
}

impl Trial {
    pub fn new(pending: PendingTrial, slot: SlotName) -> Self {
        Trial {
            pending,
            slot,
            started: Instant::now(),
            healthy_since: None,
        }
    }
}

/// What the critical checks say now.
enum Verdict {
    Wait(Option<Instant>),
    Commit(String),
    Fail(String),
}

/// The controller.
pub(crate) struct Probation {
    machine: Arc<Machine>,
    trial: Option<Trial>,
    /// A reboot the start decided (a rollback a power cut interrupted), asked for at
    /// the first reconcile.
    reboot_at_start: bool,
}

impl Probation {
    pub fn new(machine: Arc<Machine>, trial: Option<Trial>, reboot_at_start: bool) -> Self {
        Probation {
            machine,
            trial,
            reboot_at_start,
        }
    }

    fn judge(
        &self,
        trial: &mut Trial,
        checks: &[(String, HealthCheckStatus)],
        probation: Duration,
    ) -> Verdict {
        let now = Instant::now();
        let critical: Vec<&(String, HealthCheckStatus)> =
            checks.iter().filter(|(_, c)| c.critical).collect();
        if let Some((id, check)) = critical
            .iter()
            .find(|(_, c)| c.state == CheckState::Unhealthy)
        {
            return Verdict::Fail(format!(
                "critical health check {id} failed during probation: {}",
                if check.message.is_empty() {
                    "unhealthy"
                } else {
                    &check.message
                }
            ));
        }
        let all_healthy =
            !critical.is_empty() && critical.iter().all(|(_, c)| c.state == CheckState::Healthy);
        if all_healthy {
            let since = *trial.healthy_since.get_or_insert(now);
            if now.duration_since(since) >= probation {
                return Verdict::Commit(format!(
                    "every critical health check ({}) stayed healthy for the probation time of {}",
                    critical
                        .iter()
                        .map(|(id, _)| id.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                    humanize(probation)
                ));
            }
        } else {
            trial.healthy_since = None;
        }
        let deadline = trial.started + probation * 2;
        if now >= deadline {
            let waiting: Vec<&str> = critical
                .iter()
                .filter(|(_, c)| c.state != CheckState::Healthy)
                .map(|(id, _)| id.as_str())
                .collect();
            return Verdict::Fail(if critical.is_empty() {
                format!(
                    "no critical health check reported within {} of probation; a trial is committed only on critical checks that pass",
                    humanize(probation * 2)
                )
            } else if waiting.is_empty() {
                format!(
                    "the critical health checks did not stay healthy for {} before the probation deadline",
                    humanize(probation)
                )
            } else {
                format!(
                    "probation deadline passed: critical health checks {} were not healthy",
                    waiting.join(", ")
                )
            });
        }
        let next = match trial.healthy_since {
            Some(since) => (since + probation).min(deadline),
            None => deadline,
        };
        Verdict::Wait(Some(next))
    }

    fn commit(&mut self, trial: &Trial, reason: &str) -> Result<(), ControllerError> {
        let m = &self.machine;
        let entry = {
            let _io = m.lock_io();
            if m.decided.swap(true, Ordering::SeqCst) {
                return Ok(());
            }
            let mut store = m.boot_store()?;
            let mut history = m.history();
            flow::commit(&mut history, store.as_mut(), &trial.slot, reason)?
        };
        m.record_install_commit(&trial.slot);
        if let Err(e) = m.area.mark_committed() {
            tracing::error!(error = %e, "could not mark the trial's /var overlay committed");
        }
        m.record_floor(true);
        m.update_boot_script();
        m.entry_event("upgrade.committed", &entry);
        m.refresh_history();
        m.set_status(|s| {
            s.phase = UpgradePhaseName::Committed;
            s.probation_deadline = None;
            s.message = format!("slot {} committed: {reason}", trial.slot);
        });
        tracing::info!(slot = %trial.slot, release = %trial.pending.release, "trial committed");
        Ok(())
    }

    fn fail(&mut self, trial: &Trial, reason: &str) -> Result<(), ControllerError> {
        let m = &self.machine;
        let entry = {
            let _io = m.lock_io();
            if m.decided.swap(true, Ordering::SeqCst) {
                return Ok(());
            }
            let mut store = m.boot_store()?;
            let mut history = m.history();
            flow::fail_trial(
                &mut history,
                store.as_mut(),
                &trial.slot,
                reason,
                Decider::Probation,
            )?
        };
        m.entry_event("upgrade.rolled_back", &entry);
        m.refresh_history();
        let back = if trial.pending.from.is_empty() {
            "the known-good slot".to_owned()
        } else {
            format!("slot {}", trial.pending.from)
        };
        m.set_status(|s| {
            s.phase = UpgradePhaseName::RollingBack;
            s.probation_deadline = None;
            s.message = format!(
                "{reason}; slot {} marked bad, rebooting into {back}",
                trial.slot
            );
        });
        tracing::warn!(slot = %trial.slot, reason, "trial failed");
        m.reboot(false);
        Ok(())
    }
}

fn humanize(d: Duration) -> String {
    let ms = d.as_millis();
    if ms % 1000 == 0 {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

impl Controller for Probation {
    fn name(&self) -> &str {
        CONTROLLER
    }

    fn inputs(&self) -> Vec<Input> {
        vec![
            Input::weak::<HealthCheckStatus>(),
            Input::weak::<ActiveUpdate>(),
        ]
    }

    fn outputs(&self) -> Vec<Output> {
        vec![
            Output::exclusive::<UpgradeStatus>(),
            Output::exclusive::<UpgradeHistoryEntry>(),
        ]
    }

    async fn reconcile(&mut self, ctx: &mut ReconcileContext) -> Result<Requeue, ControllerError> {
        if ctx.is_full_resync() {
            self.machine.refresh_history();
            if self
                .machine
                .state
                .get::<UpgradeStatus>(crate::resources::STATUS_ID)
                .is_err()
            {
                self.machine.set_status(|_| {});
            }
        }
        if std::mem::take(&mut self.reboot_at_start) {
            self.machine.reboot(false);
            return Ok(Requeue::OnChange);
        }
        let Some(mut trial) = self.trial.take() else {
            return Ok(Requeue::OnChange);
        };
        if self.machine.decided.load(Ordering::SeqCst) {
            return Ok(Requeue::OnChange);
        }
        let probation = ctx
            .get::<ActiveUpdate>(SINGLETON)?
            .map_or(DEFAULT_PROBATION, |u| u.spec.0.probation.0)
            .min(MAX_PROBATION);
        let checks: Vec<(String, HealthCheckStatus)> = ctx
            .list::<HealthCheckStatus>(&Selector::all())?
            .into_iter()
            .map(|r| (r.metadata.id.to_string(), r.spec))
            .collect();
        match self.judge(&mut trial, &checks, probation) {
            Verdict::Commit(reason) => {
                self.commit(&trial, &reason)?;
                Ok(Requeue::OnChange)
            }
            Verdict::Fail(reason) => {
                self.fail(&trial, &reason)?;
                Ok(Requeue::OnChange)
            }
            Verdict::Wait(next) => {
                let deadline = trial.started + probation * 2;
                let left = deadline.saturating_duration_since(Instant::now());
                let message = match trial.healthy_since {
                    Some(since) => format!(
                        "every critical check healthy for {} of {}",
                        humanize(since.elapsed()),
                        humanize(probation)
                    ),
                    None => "waiting for every critical health check to be healthy".to_owned(),
                };
                self.machine.set_status(|s| {
                    s.phase = UpgradePhaseName::Probation;
                    s.release = trial.pending.release.clone();
                    s.target_slot = trial.slot.to_string();
                    s.probation_deadline = Some(SystemTime::now() + left);
                    s.message = message;
                });
                let wait = next
                    .map_or(TICK_MAX, |n| n.saturating_duration_since(Instant::now()))
                    .clamp(TICK_MIN, TICK_MAX);
                self.trial = Some(trial);
                Ok(Requeue::After(wait))
            }
        }
    }
}
