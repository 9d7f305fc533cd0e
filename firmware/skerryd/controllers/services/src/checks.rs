//! The health check loops: each check of each service probes on its interval, bounded
//! by its timeout, and its thresholds turn results into a verdict. Every result is
//! written to the check's `HealthCheckStatus`, and a critical check's verdict goes to
//! the watchdog's vitals (pass while healthy, fail otherwise) on every result.

use std::collections::BTreeMap;
use std::time::SystemTime;

use skerry_config::kinds::HealthCheck;
use skerry_supervisor::{HealthTracker, ProbeOutcome};
use skerry_watchdog::gate::HealthReport;
use skerryd_core::resources::{CheckState, HealthCheckStatus};
use tokio::time::MissedTickBehavior;

use crate::book::{Ledger, Task};
use crate::convert::CheckProbe;

/// Everything one check loop needs.
#[derive(Debug)]
pub(crate) struct CheckLoop {
    pub(crate) ledger: Ledger,
    pub(crate) service: String,
    pub(crate) generation: u64,
    pub(crate) check: HealthCheck,
    pub(crate) probe: CheckProbe,
    pub(crate) env: BTreeMap<String, String>,
    pub(crate) report: Option<HealthReport>,
}

/// The status a check starts with.
pub(crate) fn initial(check: &HealthCheck) -> HealthCheckStatus {
    HealthCheckStatus {
        critical: check.critical,
        state: CheckState::Unknown,
        message: "no result yet".into(),
        last_run: None,
        consecutive_failures: 0,
        since: Some(SystemTime::now()),
    }
}

impl CheckLoop {
    pub(crate) fn spawn(self) -> Task {
        Task(tokio::spawn(self.run()))
    }

    async fn run(self) {
        let check = &self.check;
        let mut tracker = HealthTracker::new(check.success_threshold, check.failure_threshold);
        let mut status = initial(check);
        let mut ticks = tokio::time::interval(check.interval.0);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let outcome =
                match tokio::time::timeout(check.timeout.0, self.probe.run(&self.env)).await {
                    Ok(outcome) => outcome,
                    Err(_) => ProbeOutcome::Fail(format!("timed out after {}", check.timeout)),
                };
            let transition = tracker.observe(outcome.passed());
            status.last_run = Some(SystemTime::now());
            match &outcome {
                ProbeOutcome::Pass => {
                    status.consecutive_failures = 0;
                    status.message.clear();
                }
                ProbeOutcome::Fail(why) => {
                    status.consecutive_failures = status.consecutive_failures.saturating_add(1);
                    status.message = why.clone();
                }
            }
            if transition.is_some() {
                status.since = status.last_run;
            }
            status.state = match tracker.state() {
                skerry_supervisor::HealthState::Healthy => CheckState::Healthy,
                skerry_supervisor::HealthState::Unhealthy => CheckState::Unhealthy,
                _ => CheckState::Unknown,
            };
            if let Some(report) = &self.report {
                match status.state {
                    CheckState::Healthy => report.pass(),
                    CheckState::Unhealthy => report.fail(&status.message),
                    CheckState::Unknown if status.message.is_empty() => {
                        report.fail("no verdict yet (passing, below its success threshold)")
                    }
                    CheckState::Unknown => {
                        report.fail(&format!("no verdict yet: {}", status.message))
                    }
                }
            }
            self.ledger
                .record_check(&self.service, self.generation, &check.name, status.clone());
        }
    }
}
