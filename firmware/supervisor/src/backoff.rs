//! Restart decisions as pure functions: whether an exit restarts, and after how long.

use std::time::Duration;

use crate::spec::{BackoffSpec, RestartPolicy};
use crate::status::ExitReason;

/// Whether a service restarts after this exit (`None`: it failed to spawn).
pub fn restart_wanted(policy: RestartPolicy, exit: Option<ExitReason>) -> bool {
    match policy {
        RestartPolicy::Always => true,
        RestartPolicy::OnFailure => !exit.is_some_and(ExitReason::is_clean),
        RestartPolicy::Never => false,
    }
}

/// The backoff of one service: consecutive quick failures grow the delay.
#[derive(Debug, Clone)]
pub struct Backoff {
    spec: BackoffSpec,
    attempt: u32,
}

impl Backoff {
    pub fn new(spec: BackoffSpec) -> Self {
        Backoff { spec, attempt: 0 }
    }

    /// Consecutive restarts since the last stable run.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The delay for restart number `attempt` (0-based): `base * factor^attempt`,
    /// capped, computed without overflow.
    pub fn delay_for(spec: &BackoffSpec, attempt: u32) -> Duration {
        let mut delay = spec.base_ms.min(spec.cap_ms);
        for _ in 0..attempt {
            delay = delay.saturating_mul(u64::from(spec.factor));
            if delay >= spec.cap_ms {
                return Duration::from_millis(spec.cap_ms);
            }
        }
        Duration::from_millis(delay)
    }

    /// Records a run that lasted `ran_for` and returns the delay before the next
    /// start. A run of at least `reset_after` was stable: the backoff starts over.
    pub fn after_run(&mut self, ran_for: Duration) -> Duration {
        if ran_for >= Duration::from_millis(self.spec.reset_after_ms) {
            self.attempt = 0;
        }
        let delay = Self::delay_for(&self.spec, self.attempt);
        self.attempt = self.attempt.saturating_add(1);
        delay
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> BackoffSpec {
        BackoffSpec {
            base_ms: 100,
            factor: 2,
            cap_ms: 1_000,
            reset_after_ms: 5_000,
        }
    }

    #[test]
    fn delays_grow_by_the_factor_up_to_the_cap() {
        let delays: Vec<u64> = (0..7)
            .map(|n| Backoff::delay_for(&spec(), n).as_millis() as u64)
            .collect();
        assert_eq!(delays, [100, 200, 400, 800, 1_000, 1_000, 1_000]);
    }

    #[test]
    fn huge_attempts_and_factors_do_not_overflow() {
        let wide = BackoffSpec {
            base_ms: u64::MAX / 2,
            factor: u32::MAX,
            cap_ms: u64::MAX,
            reset_after_ms: 0,
        };
        assert_eq!(
            Backoff::delay_for(&wide, u32::MAX),
            Duration::from_millis(u64::MAX)
        );
        assert_eq!(
            Backoff::delay_for(&spec(), u32::MAX),
            Duration::from_millis(1_000)
        );
    }

    #[test]
    fn factor_one_is_a_constant_delay() {
        let flat = BackoffSpec {
            factor: 1,
            ..spec()
        };
        assert_eq!(Backoff::delay_for(&flat, 50), Duration::from_millis(100));
    }

    #[test]
    fn quick_failures_grow_and_a_stable_run_resets() {
        let mut backoff = Backoff::new(spec());
        let quick = Duration::from_millis(10);
        assert_eq!(backoff.after_run(quick), Duration::from_millis(100));
        assert_eq!(backoff.after_run(quick), Duration::from_millis(200));
        assert_eq!(backoff.after_run(quick), Duration::from_millis(400));
        assert_eq!(
            backoff.after_run(Duration::from_millis(5_000)),
            Duration::from_millis(100)
        );
        assert_eq!(backoff.after_run(quick), Duration::from_millis(200));
    }

    #[test]
    fn a_run_just_short_of_stable_does_not_reset() {
        let mut backoff = Backoff::new(spec());
        backoff.after_run(Duration::ZERO);
        assert_eq!(
            backoff.after_run(Duration::from_millis(4_999)),
            Duration::from_millis(200)
        );
    }

    #[test]
    fn restart_policy_decisions() {
        use ExitReason::*;
        use RestartPolicy::*;
        let cases = [
            (Always, Some(Code(0)), true),
            (Always, Some(Code(3)), true),
            (Always, None, true),
            (OnFailure, Some(Code(0)), false),
            (OnFailure, Some(Code(1)), true),
            (OnFailure, Some(Signal(9)), true),
            (OnFailure, None, true),
            (Never, Some(Code(1)), false),
            (Never, None, false),
        ];
        for (policy, exit, want) in cases {
            assert_eq!(
                restart_wanted(policy, exit),
                want,
                "{policy:?} after {exit:?}"
            );
        }
    }
}
