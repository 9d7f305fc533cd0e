//! Health verdicts from probe results: the threshold logic as a pure tracker, and the
//! loop that probes on an interval with a timeout (time from tokio, so tests pause it).

use std::future::Future;

use tokio::time::MissedTickBehavior;

use crate::probe::ProbeOutcome;
use crate::spec::HealthCheckSpec;
use crate::status::HealthState;

/// A change of verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthTransition {
    pub from: HealthState,
    pub to: HealthState,
}

/// Counts consecutive passes and failures against the thresholds.
#[derive(Debug, Clone)]
pub struct HealthTracker {
    success_threshold: u32,
    failure_threshold: u32,
    state: HealthState,
    passes: u32,
    failures: u32,
}

impl HealthTracker {
    pub fn new(success_threshold: u32, failure_threshold: u32) -> Self {
        HealthTracker {
            success_threshold: success_threshold.max(1),
            failure_threshold: failure_threshold.max(1),
            state: HealthState::Unknown,
            passes: 0,
            failures: 0,
        }
    }

    pub fn for_spec(spec: &HealthCheckSpec) -> Self {
        Self::new(spec.success_threshold, spec.failure_threshold)
    }

    pub fn state(&self) -> HealthState {
        self.state
    }

    /// Records one probe result; returns the transition it caused, if any.
    pub fn observe(&mut self, passed: bool) -> Option<HealthTransition> {
        let from = self.state;
        if passed {
            self.failures = 0;
            self.passes = self.passes.saturating_add(1);
            if self.state != HealthState::Healthy && self.passes >= self.success_threshold {
                self.state = HealthState::Healthy;
            }
        } else {
            self.passes = 0;
            self.failures = self.failures.saturating_add(1);
            if self.state != HealthState::Unhealthy && self.failures >= self.failure_threshold {
                self.state = HealthState::Unhealthy;
            }
        }
        (self.state != from).then_some(HealthTransition {
            from,
            to: self.state,
        })
    }
}

/// Probes every `interval` (the first probe at once), each bounded by `timeout`, and
/// hands every outcome with the transition it caused to `report`. Runs until the
/// caller drops it (the runner does when the process exits).
pub async fn run_health_loop<P, F>(
    spec: &HealthCheckSpec,
    mut probe: P,
    mut report: impl FnMut(&ProbeOutcome, Option<HealthTransition>),
) where
    P: FnMut() -> F,
    F: Future<Output = ProbeOutcome>,
{
    let mut tracker = HealthTracker::for_spec(spec);
    let mut ticks = tokio::time::interval(spec.interval());
    // A probe that overran its slot is not followed by a burst of catch-up probes.
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let outcome = match tokio::time::timeout(spec.timeout(), probe()).await {
            Ok(outcome) => outcome,
            Err(_) => ProbeOutcome::Fail(format!("timed out after {} ms", spec.timeout_ms)),
        };
        let transition = tracker.observe(outcome.passed());
        report(&outcome, transition);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use HealthState::*;

    fn run(tracker: &mut HealthTracker, results: &str) -> Vec<HealthState> {
        results
            .chars()
            .map(|c| {
                tracker.observe(c == '+');
                tracker.state()
            })
            .collect()
    }

    #[test]
    fn thresholds_gate_each_flip() {
        let mut t = HealthTracker::new(2, 3);
        assert_eq!(
            run(&mut t, "+-+--+---++"),
            [
                Unknown, Unknown, Unknown, Unknown, Unknown, Unknown, Unknown, Unknown, Unhealthy,
                Unhealthy, Healthy
            ]
        );
    }

    #[test]
    fn healthy_survives_fewer_failures_than_the_threshold() {
        let mut t = HealthTracker::new(1, 3);
        assert_eq!(run(&mut t, "+--+--+"), [Healthy; 7]);
        assert_eq!(t.observe(false), None);
        assert_eq!(t.observe(false), None);
        assert_eq!(
            t.observe(false),
            Some(HealthTransition {
                from: Healthy,
                to: Unhealthy
            })
        );
    }

    #[test]
    fn transitions_are_reported_once() {
        let mut t = HealthTracker::new(1, 1);
        assert_eq!(
            t.observe(true),
            Some(HealthTransition {
                from: Unknown,
                to: Healthy
            })
        );
        assert_eq!(t.observe(true), None);
        assert_eq!(
            t.observe(false),
            Some(HealthTransition {
                from: Healthy,
                to: Unhealthy
            })
        );
        assert_eq!(t.observe(false), None);
    }

    #[tokio::test(start_paused = true)]
    async fn the_loop_probes_on_its_interval_times_out_and_flips_at_the_thresholds() {
        use std::cell::RefCell;
        use std::collections::VecDeque;
        use std::time::Duration;

        use crate::spec::HealthCheckKind;

        let spec = HealthCheckSpec {
            interval_ms: 1_000,
            timeout_ms: 300,
            success_threshold: 2,
            failure_threshold: 2,
            ..HealthCheckSpec::new(HealthCheckKind::Tcp {
                host: "unused".into(),
                port: 1,
            })
        };
        // Pass, pass, fail, fail, pass, pass, then every probe hangs past its timeout.
        let script = RefCell::new(VecDeque::from([true, true, false, false, true, true]));
        let start = tokio::time::Instant::now();
        let mut seen = Vec::new();
        let probe = || {
            let next = script.borrow_mut().pop_front();
            async move {
                match next {
                    Some(true) => ProbeOutcome::Pass,
                    Some(false) => ProbeOutcome::Fail("scripted".into()),
                    None => std::future::pending().await,
                }
            }
        };
        let run = run_health_loop(&spec, probe, |_, transition| {
            if let Some(t) = transition {
                seen.push((start.elapsed().as_millis(), t.to));
            }
        });
        let _ = tokio::time::timeout(Duration::from_secs(20), run).await;
        assert_eq!(
            seen,
            [
                (1_000, Healthy),
                (3_000, Unhealthy),
                (5_000, Healthy),
                (7_300, Unhealthy)
            ]
        );
    }

    #[test]
    fn zero_thresholds_act_as_one() {
        let mut t = HealthTracker::new(0, 0);
        assert_eq!(t.observe(false).map(|x| x.to), Some(Unhealthy));
    }
}
