//! A check-in from the wire, bounded and checked field by field before anything is
//! stored. Each refusal names the field (`reports[2].step`) and what was wrong.

use std::collections::BTreeMap;

use semver::Version;
use skerry_fleet_store::{
    Admission, CheckIn, HealthReport, HealthState, SlotReport, SlotStatus, StepKind, UpgradeReport,
};
use skerry_proto::fleet::v1 as pb;
use skerry_rollout::UnixTime;

pub const MAX_DEVICE_ID: usize = 128;
pub const MAX_CHANNEL: usize = 64;
pub const MAX_VERSION: usize = 64;
pub const MAX_LABELS: usize = 32;
pub const MAX_LABEL_KEY: usize = 63;
pub const MAX_LABEL_VALUE: usize = 255;
pub const MAX_SLOTS: usize = 8;
pub const MAX_SLOT_NAME: usize = 32;
pub const MAX_FAILING_CHECKS: usize = 32;
pub const MAX_CHECK_NAME: usize = 128;
pub const MAX_REPORTS: usize = 64;
pub const MAX_REASON: usize = 1024;
/// Whole request, checked by the gRPC decoder before any field is.
pub const MAX_REQUEST_BYTES: usize = 256 * 1024;

/// A refused field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct FieldError {
    pub field: String,
    pub problem: String,
}

fn refuse(field: impl Into<String>, problem: impl Into<String>) -> FieldError {
    FieldError {
        field: field.into(),
        problem: problem.into(),
    }
}

fn name(field: &str, value: &str, max: usize, extra: &[u8]) -> Result<String, FieldError> {
    if value.is_empty() {
        return Err(refuse(field, "is empty"));
    }
    if value.len() > max {
        return Err(refuse(
            field,
            format!("is {} bytes; at most {max}", value.len()),
        ));
    }
    if !value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || extra.contains(&b))
    {
        let allowed: String = extra.iter().map(|&b| b as char).collect();
        return Err(refuse(
            field,
            format!("may hold only letters, digits and {allowed:?}"),
        ));
    }
    Ok(value.into())
}

fn version(field: &str, value: &str) -> Result<Version, FieldError> {
    if value.len() > MAX_VERSION {
        return Err(refuse(
            field,
            format!("is {} bytes; at most {MAX_VERSION}", value.len()),
        ));
    }
    Version::parse(value)
        .map_err(|e| refuse(field, format!("{value:?} is not a semantic version: {e}")))
}

fn free_text(field: &str, value: &str, max: usize) -> Result<String, FieldError> {
    if value.len() > max {
        return Err(refuse(
            field,
            format!("is {} bytes; at most {max}", value.len()),
        ));
    }
    if value
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(refuse(field, "holds control characters"));
    }
    Ok(value.into())
}

/// An enum field: unknown numbers and the `UNSPECIFIED` zero are refused.
fn choice<E: TryFrom<i32>>(field: &str, raw: i32, known: &str) -> Result<E, FieldError> {
    if raw == 0 {
        return Err(refuse(
            field,
            format!("is unspecified; choose one of {known}"),
        ));
    }
    E::try_from(raw).map_err(|_| {
        refuse(
            field,
            format!("unknown value {raw}; expected one of {known}"),
        )
    })
}

/// Checks a request into the store's [`CheckIn`].
pub fn check_in(req: &pb::CheckInRequest, now: UnixTime) -> Result<CheckIn, FieldError> {
    let device = name("device_id", &req.device_id, MAX_DEVICE_ID, b"._-")?;
    let board = name("board", &req.board, 64, b"._-")?;
    if board.bytes().any(|b| b.is_ascii_uppercase()) || board.starts_with('.') {
        return Err(refuse("board", "must be lowercase and not start with '.'"));
    }
    let running = version("version", &req.version)?;
    let channel = name("channel", &req.channel, MAX_CHANNEL, b"._-")?;
    if req.labels.len() > MAX_LABELS {
        return Err(refuse(
            "labels",
            format!("{} labels; at most {MAX_LABELS}", req.labels.len()),
        ));
    }
    let mut labels = BTreeMap::new();
    for (k, v) in &req.labels {
        let key = name(&format!("labels[{k:.40}]"), k, MAX_LABEL_KEY, b"._/-")?;
        let value = free_text(&format!("labels[{key}]"), v, MAX_LABEL_VALUE)?;
        labels.insert(key, value);
    }
    if req.slots.len() > MAX_SLOTS {
        return Err(refuse(
            "slots",
            format!("{} slots; at most {MAX_SLOTS}", req.slots.len()),
        ));
    }
    let mut slots = Vec::with_capacity(req.slots.len());
    for (i, s) in req.slots.iter().enumerate() {
        let field = |f: &str| format!("slots[{i}].{f}");
        let status =
            match choice::<pb::SlotStatus>(&field("status"), s.status, "GOOD, TRYING, BAD, EMPTY")?
            {
                pb::SlotStatus::Good => SlotStatus::Good,
                pb::SlotStatus::Trying => SlotStatus::Trying,
                pb::SlotStatus::Bad => SlotStatus::Bad,
                pb::SlotStatus::Empty | pb::SlotStatus::Unspecified => SlotStatus::Empty,
            };
        slots.push(SlotReport {
            name: name(&field("name"), &s.name, MAX_SLOT_NAME, b"_-")?,
            version: if s.version.is_empty() {
                None
            } else {
                Some(version(&field("version"), &s.version)?)
            },
            status,
            booted: s.booted,
        });
    }
    let Some(h) = &req.health else {
        return Err(refuse("health", "is missing"));
    };
    let state =
        match choice::<pb::HealthState>("health.state", h.state, "HEALTHY, DEGRADED, UNHEALTHY")? {
            pb::HealthState::Healthy => HealthState::Healthy,
            pb::HealthState::Degraded => HealthState::Degraded,
            pb::HealthState::Unhealthy | pb::HealthState::Unspecified => HealthState::Unhealthy,
        };
    if h.failing_checks.len() > MAX_FAILING_CHECKS {
        return Err(refuse(
            "health.failing_checks",
            format!(
                "{} checks; at most {MAX_FAILING_CHECKS}",
                h.failing_checks.len()
            ),
        ));
    }
    let failing = h
        .failing_checks
        .iter()
        .enumerate()
        .map(|(i, c)| free_text(&format!("health.failing_checks[{i}]"), c, MAX_CHECK_NAME))
        .collect::<Result<_, _>>()?;
    if req.reports.len() > MAX_REPORTS {
        return Err(refuse(
            "reports",
            format!(
                "{} reports; at most {MAX_REPORTS} per check-in (send the rest next time)",
                req.reports.len()
            ),
        ));
    }
    let mut reports = Vec::with_capacity(req.reports.len());
    for (i, r) in req.reports.iter().enumerate() {
        let field = |f: &str| format!("reports[{i}].{f}");
        if r.sequence == 0 {
            return Err(refuse(field("sequence"), "starts at 1"));
        }
        if r.sequence > i64::MAX as u64 {
            return Err(refuse(field("sequence"), "is past 2^63"));
        }
        let step = match choice::<pb::UpgradeStep>(
            &field("step"),
            r.step,
            "DOWNLOADING, INSTALLED, REBOOTING, PROBATION, COMMITTED, ROLLED_BACK, FAILED",
        )? {
            pb::UpgradeStep::Downloading => StepKind::Downloading,
            pb::UpgradeStep::Installed => StepKind::Installed,
            pb::UpgradeStep::Rebooting => StepKind::Rebooting,
            pb::UpgradeStep::Probation => StepKind::Probation,
            pb::UpgradeStep::Committed => StepKind::Committed,
            pb::UpgradeStep::RolledBack => StepKind::RolledBack,
            pb::UpgradeStep::Failed | pb::UpgradeStep::Unspecified => StepKind::Failed,
        };
        let at = match &r.at {
            None => now,
            Some(t) if t.seconds < 0 => return Err(refuse(field("at"), "is before 1970")),
            Some(t) => UnixTime(t.seconds as u64),
        };
        reports.push(UpgradeReport {
            sequence: r.sequence,
            target: version(&field("target_version"), &r.target_version)?,
            step,
            reason: free_text(&field("reason"), &r.reason, MAX_REASON)?,
            at,
        });
    }
    Ok(CheckIn {
        device,
        board,
        version: running,
        channel,
        labels,
        slots,
        health: HealthReport { state, failing },
        reports,
        // The gate that took the request sets who the device must be.
        admission: Admission::Open,
    })
}
