//! The CheckIn request from what the device knows: identity, running release, slots,
//! health and the queued reports.

use skerry_proto::fleet::v1::{
    CheckInRequest, Health, HealthState, SlotState, SlotStatus, UpgradeReport, UpgradeStep,
};
use skerryd_core::resources::{CheckState, HealthCheckStatus};
use skerryd_upgrade::history::Step;

use crate::queue::QueueState;

/// Failing checks named at most.
pub const MAX_FAILING: usize = 32;
/// Reports sent per check-in (the server takes 64).
pub const MAX_REPORTS: usize = 64;

/// The report steps a history step says, in order: a trial begins only once the image
/// is written and verified, so it is `installed`, then `rebooting`. (`probation` is
/// reported by the start that finds its slot on trial; no history step records it.)
pub fn steps_of(step: Step) -> &'static [UpgradeStep] {
    match step {
        Step::InstallStarted => &[UpgradeStep::Downloading],
        Step::InstallFailed | Step::Interrupted => &[UpgradeStep::Failed],
        Step::TrialBegun => &[UpgradeStep::Installed, UpgradeStep::Rebooting],
        Step::Committed => &[UpgradeStep::Committed],
        Step::RolledBack => &[UpgradeStep::RolledBack],
    }
}

/// The health from every check's last result: a failing critical check makes the
/// device unhealthy, another failing check degraded.
pub fn health(checks: &[(String, HealthCheckStatus)]) -> Health {
    let failing: Vec<&(String, HealthCheckStatus)> = checks
        .iter()
        .filter(|(_, c)| c.state == CheckState::Unhealthy)
        .collect();
    let state = if failing.iter().any(|(_, c)| c.critical) {
        HealthState::Unhealthy
    } else if failing.is_empty() {
        HealthState::Healthy
    } else {
        HealthState::Degraded
    };
    Health {
        state: state as i32,
        failing_checks: failing
            .iter()
            .take(MAX_FAILING)
            .map(|(name, _)| name.chars().take(128).collect())
            .collect(),
    }
}

/// The booted slot as the boot state had it at start.
pub fn booted_slot(name: &str, version: &str, on_trial: bool) -> SlotState {
    SlotState {
        name: name.to_owned(),
        version: version.to_owned(),
        status: if on_trial {
            SlotStatus::Trying
        } else {
            SlotStatus::Good
        } as i32,
        booted: true,
    }
}

/// Who the device is, for the request.
#[derive(Debug, Clone)]
pub struct Identity {
    pub device_id: String,
    pub board: String,
    pub version: String,
    pub channel: String,
    pub labels: std::collections::BTreeMap<String, String>,
}

/// The whole request; the oldest [`MAX_REPORTS`] queued reports ride along.
pub fn build(
    who: &Identity,
    slots: Vec<SlotState>,
    health: Health,
    queue: &QueueState,
) -> CheckInRequest {
    CheckInRequest {
        device_id: who.device_id.clone(),
        board: who.board.clone(),
        version: who.version.clone(),
        channel: who.channel.clone(),
        labels: who.labels.clone().into_iter().take(32).collect(),
        slots,
        health: Some(health),
        reports: queue
            .reports
            .iter()
            .take(MAX_REPORTS)
            .map(|r| UpgradeReport {
                sequence: r.sequence,
                target_version: r.target_version.clone(),
                step: r.step,
                reason: r.reason.clone(),
                at: Some(prost_types::Timestamp {
                    seconds: i64::try_from(r.at).unwrap_or(i64::MAX),
                    nanos: 0,
                }),
            })
            .collect(),
    }
}
