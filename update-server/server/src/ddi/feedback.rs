//! A DDI feedback body (`{"status":{"execution":…,"result":{"finished":…},"details":[…]}}`)
//! checked and turned into the upgrade steps every device reports.

use serde_json::Value;
use skerry_fleet_store::StepKind;

/// Details kept from one feedback, joined into the step's reason.
pub const MAX_DETAILS: usize = 16;
/// Longest reason stored (the check-in's own bound).
pub const MAX_REASON_BYTES: usize = 1024;

/// What a feedback says, in our words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// `proceeding`, `download`, `downloaded`, `scheduled`, `resumed`: working on it.
    Working { execution: String },
    /// `closed` with `success`.
    Succeeded,
    /// `closed` with `failure`, or `rejected`.
    Failed { reason: String },
    /// `canceled`: the target confirms a cancel.
    Canceled,
}

impl Progress {
    /// The steps this feedback records on the device's timeline.
    pub fn steps(&self) -> Vec<(StepKind, String)> {
        match self {
            Progress::Working { execution } if execution == "downloaded" => {
                vec![(StepKind::Downloading, "downloaded".into())]
            }
            Progress::Working { execution } => vec![(StepKind::Downloading, execution.clone())],
            Progress::Succeeded => vec![
                (StepKind::Installed, "hawkBit DDI: closed, success".into()),
                (StepKind::Committed, String::new()),
            ],
            Progress::Failed { reason } => vec![(StepKind::Failed, reason.clone())],
            Progress::Canceled => vec![(StepKind::Failed, "canceled".into())],
        }
    }
}

fn truncate(mut s: String) -> String {
    if s.len() > MAX_REASON_BYTES {
        let mut cut = MAX_REASON_BYTES;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
    s
}

/// Parses a feedback body; the error names the field that is wrong.
pub fn parse(body: &[u8]) -> Result<Progress, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    let status = v.get("status").ok_or("no status")?;
    let execution = status
        .get("execution")
        .and_then(Value::as_str)
        .ok_or("status.execution: missing or not a string")?;
    let finished = status
        .pointer("/result/finished")
        .and_then(Value::as_str)
        .unwrap_or("none");
    let details: Vec<&str> = match status.get("details") {
        None | Some(Value::Null) => vec![],
        Some(Value::Array(a)) => a
            .iter()
            .take(MAX_DETAILS)
            .filter_map(Value::as_str)
            .collect(),
        Some(_) => return Err("status.details: not a list".into()),
    };
    let reason = || {
        truncate(format!(
            "hawkBit DDI: {execution}, {finished}: {}",
            details.join("; ")
        ))
    };
    match (execution, finished) {
        ("closed", "success") => Ok(Progress::Succeeded),
        ("closed", "failure") | ("rejected", _) => Ok(Progress::Failed { reason: reason() }),
        ("closed", other) => Err(format!(
            "status.result.finished: {other:?} with closed (success or failure)"
        )),
        ("canceled", _) => Ok(Progress::Canceled),
        ("proceeding" | "download" | "downloaded" | "scheduled" | "resumed", "failure") => {
            Ok(Progress::Failed { reason: reason() })
        }
        ("proceeding" | "download" | "downloaded" | "scheduled" | "resumed", _) => {
            Ok(Progress::Working {
                execution: execution.into(),
            })
        }
        (other, _) => Err(format!("status.execution: unknown value {other:?}")),
    }
}
