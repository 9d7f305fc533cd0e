//! Prometheus metrics in the text exposition format, from a small registry of our own:
//! check-ins, upgrade reports by step, the store's check-in latency (histogram), and at
//! each scrape the state of every rollout. Process-wide atomics, so counting costs a
//! few relaxed increments on the check-in path.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Instant;

use skerry_fleet_store::{CheckIn, RolloutWithStats, StepKind};
use skerry_rollout::RolloutState;

/// Upper bounds (seconds) of the latency histogram's buckets.
pub const LATENCY_BUCKETS: [f64; 10] =
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0];

const STEPS: [StepKind; 7] = [
    StepKind::Downloading,
    StepKind::Installed,
    StepKind::Rebooting,
    StepKind::Probation,
    StepKind::Committed,
    StepKind::RolledBack,
    StepKind::Failed,
];

#[allow(clippy::declare_interior_mutable_const)]
const ZERO: AtomicU64 = AtomicU64::new(0);
static CHECK_INS: AtomicU64 = ZERO;
static CHECK_IN_ERRORS: AtomicU64 = ZERO;
static REPORTS: [AtomicU64; 7] = [ZERO; 7];
static LATENCY_COUNTS: [AtomicU64; 10] = [ZERO; 10];
static LATENCY_COUNT: AtomicU64 = ZERO;
static LATENCY_MICROS: AtomicU64 = ZERO;

/// Runs the store's check-in, counting it, its reports by step and its latency.
pub fn timed_check_in<T, E>(
    check_in: &CheckIn,
    store: impl FnOnce() -> Result<T, E>,
) -> Result<T, E> {
    let started = Instant::now();
    let out = store();
    count_check_in(check_in, started.elapsed(), out.is_ok());
    out
}

/// Counts one check-in the store took `elapsed` to answer (`stored`: it was recorded).
pub fn count_check_in(check_in: &CheckIn, elapsed: std::time::Duration, stored: bool) {
    let secs = elapsed.as_secs_f64();
    for (bound, count) in LATENCY_BUCKETS.iter().zip(&LATENCY_COUNTS) {
        if secs <= *bound {
            count.fetch_add(1, Relaxed);
        }
    }
    LATENCY_COUNT.fetch_add(1, Relaxed);
    LATENCY_MICROS.fetch_add((secs * 1e6) as u64, Relaxed);
    if stored {
        CHECK_INS.fetch_add(1, Relaxed);
        for r in &check_in.reports {
            if let Some(i) = STEPS.iter().position(|s| *s == r.step) {
                REPORTS[i].fetch_add(1, Relaxed);
            }
        }
    } else {
        CHECK_IN_ERRORS.fetch_add(1, Relaxed);
    }
}

/// The exposition text, with one `skerry_rollout_state` series per rollout and state
/// (1 for the state it is in).
pub fn render(rollouts: &[RolloutWithStats]) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "# HELP skerry_check_ins_total Check-ins stored.\n# TYPE skerry_check_ins_total counter"
    );
    let _ = writeln!(o, "skerry_check_ins_total {}", CHECK_INS.load(Relaxed));
    let _ = writeln!(o, "# HELP skerry_check_in_errors_total Check-ins the store refused or failed.\n# TYPE skerry_check_in_errors_total counter");
    let _ = writeln!(
        o,
        "skerry_check_in_errors_total {}",
        CHECK_IN_ERRORS.load(Relaxed)
    );
    let _ = writeln!(o, "# HELP skerry_reports_total Upgrade reports received, by step.\n# TYPE skerry_reports_total counter");
    for (step, n) in STEPS.iter().zip(&REPORTS) {
        let _ = writeln!(
            o,
            "skerry_reports_total{{step=\"{}\"}} {}",
            step.name(),
            n.load(Relaxed)
        );
    }
    let _ = writeln!(o, "# HELP skerry_db_check_in_seconds Time the store took to record a check-in.\n# TYPE skerry_db_check_in_seconds histogram");
    for (bound, n) in LATENCY_BUCKETS.iter().zip(&LATENCY_COUNTS) {
        let _ = writeln!(
            o,
            "skerry_db_check_in_seconds_bucket{{le=\"{bound}\"}} {}",
            n.load(Relaxed)
        );
    }
    let count = LATENCY_COUNT.load(Relaxed);
    let _ = writeln!(
        o,
        "skerry_db_check_in_seconds_bucket{{le=\"+Inf\"}} {count}"
    );
    let _ = writeln!(
        o,
        "skerry_db_check_in_seconds_sum {}",
        LATENCY_MICROS.load(Relaxed) as f64 / 1e6
    );
    let _ = writeln!(o, "skerry_db_check_in_seconds_count {count}");
    let _ = writeln!(o, "# HELP skerry_rollout_state 1 for the state each rollout is in.\n# TYPE skerry_rollout_state gauge");
    for r in rollouts {
        let now = match r.rollout.state {
            RolloutState::Active => "active",
            RolloutState::Paused { .. } => "paused",
            RolloutState::Aborted => "aborted",
        };
        for state in ["active", "paused", "aborted"] {
            let _ = writeln!(
                o,
                "skerry_rollout_state{{rollout=\"{}\",state=\"{state}\"}} {}",
                label(&r.rollout.id),
                u8::from(state == now)
            );
        }
    }
    o
}

/// A label value escaped as the exposition format asks (`\\`, `\"`, `\n`).
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
