//! A DDI feedback body (`{"status":{"execution":…,"result":{"finished":…},"details":[…]}}`)
//! checked and turned into the upgrade steps every device reports.

use serde_json::Value;
use skerry_fleet_store::StepKind;

/// Details kept from one feedback, joined into the step's reason (SWUpdate sends its
/// log in batches of at most 48 lines).
pub const MAX_DETAILS: usize = 48;
/// Longest reason stored (the check-in's own bound).
pub const MAX_REASON_BYTES: usize = 1024;

/// What a feedback says, in our words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// `proceeding`, `download`, `downloaded`, `scheduled`, `resumed`: working on it.
    /// `details` is the target's log so far (SWUpdate sends its install log, and the
    /// reason of a refused image, here before its `closed`+`failure`).
    Working { execution: String, details: String },
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
            Progress::Working { execution, details } if details.is_empty() => {
                vec![(StepKind::Downloading, execution.clone())]
            }
            Progress::Working { execution, details } => vec![(
                StepKind::Downloading,
                truncate(format!("{execution}: {details}")),
            )],
            Progress::Succeeded => vec![
                (StepKind::Installed, "hawkBit DDI: closed, success".into()),
                (StepKind::Committed, String::new()),
            ],
            Progress::Failed { reason } => vec![(StepKind::Failed, reason.clone())],
            Progress::Canceled => vec![(StepKind::Failed, "canceled".into())],
        }
    }
}

impl Progress {
    /// What a feedback on `cancelAction/{id}/feedback` means: `closed`+`success` (what
    /// SWUpdate sends) or `canceled` confirm the cancel; `closed`+`failure` or `rejected`
    /// refuse it, so the deployment goes on. Neither is the deployment's own outcome.
    pub fn for_cancel(self) -> Progress {
        match self {
            Progress::Succeeded | Progress::Canceled => Progress::Canceled,
            Progress::Failed { reason } => Progress::Working {
                execution: "cancel refused".into(),
                details: reason,
            },
            working => working,
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
    let mut details: Vec<&str> = match status.get("details") {
        None | Some(Value::Null) => vec![],
        // At most 64 KiB of them (the body's bound).
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        Some(_) => return Err("status.details: not a list".into()),
    };
    // A log longer than the reason's bound keeps its error lines (SWUpdate marks them
    // `ERROR`, as it does for the ones it picks for a failure) ahead of the rest.
    if details.len() > MAX_DETAILS
        || details.iter().map(|d| d.len() + 2).sum::<usize>() > MAX_REASON_BYTES
    {
        details.sort_by_key(|d| !d.starts_with("ERROR"));
    }
    details.truncate(MAX_DETAILS);
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
                details: truncate(details.join("; ")),
            })
        }
        (other, _) => Err(format!("status.execution: unknown value {other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_progress_keeps_the_targets_log_lines() {
        let body = br#"{"status":{"execution":"proceeding","result":{"finished":"none"},
            "details":["Software Update started !","ERROR : Authentication of all signatures failed"]}}"#;
        let p = parse(body).unwrap();
        assert_eq!(
            p.steps(),
            [(
                StepKind::Downloading,
                "proceeding: Software Update started !; ERROR : Authentication of all signatures failed"
                    .to_string()
            )]
        );
        let bare = parse(br#"{"status":{"execution":"downloaded"}}"#).unwrap();
        assert_eq!(
            bare.steps(),
            [(StepKind::Downloading, "downloaded".to_string())]
        );
    }

    #[test]
    fn a_cancel_feedback_is_never_the_deployments_outcome() {
        let confirm = br#"{"status":{"execution":"closed","result":{"finished":"success"}}}"#;
        assert_eq!(parse(confirm).unwrap().for_cancel(), Progress::Canceled);
        let refuse = br#"{"status":{"execution":"rejected","details":["busy"]}}"#;
        assert!(matches!(
            parse(refuse).unwrap().for_cancel(),
            Progress::Working { .. }
        ));
    }

    #[test]
    fn a_long_log_is_cut_to_the_reason_bound() {
        let line = "x".repeat(200);
        let details: Vec<&str> = (0..100).map(|_| line.as_str()).collect();
        let body = serde_json::json!({"status": {"execution": "proceeding", "details": details}});
        let steps = parse(body.to_string().as_bytes()).unwrap().steps();
        assert!(steps[0].1.len() <= MAX_REASON_BYTES, "{}", steps[0].1.len());
        // An error line late in a long log is kept.
        let mut details = details;
        details.push("ERROR : Authentication of all signatures failed");
        let body = serde_json::json!({"status": {"execution": "proceeding", "details": details}});
        let steps = parse(body.to_string().as_bytes()).unwrap().steps();
        assert!(
            steps[0]
                .1
                .starts_with("proceeding: ERROR : Authentication of all signatures failed; x"),
            "{}",
            steps[0].1
        );
    }
}
