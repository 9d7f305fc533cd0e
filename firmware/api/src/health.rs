//! What the daemon tells the API about the machine's health: a snapshot of every
//! health check, read through the [`HealthSource`] trait the daemon implements.

use std::time::SystemTime;

/// A health check's last result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckStatus {
    /// Not run yet, or no result within its interval.
    Unknown,
    /// It passed.
    Healthy,
    /// It failed.
    Unhealthy,
}

/// One health check as the daemon last saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckReport {
    /// The check's name as the configuration gives it.
    pub name: String,
    /// A critical check gates probation and the watchdog.
    pub critical: bool,
    /// Its last result.
    pub status: CheckStatus,
    /// Why it last failed; empty when it passed.
    pub message: String,
    /// When it last ran.
    pub last_run: Option<SystemTime>,
    /// Failures in a row.
    pub consecutive_failures: u32,
}

/// Every health check at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HealthReport {
    /// The checks, in the order the daemon keeps them.
    pub checks: Vec<CheckReport>,
}

impl HealthReport {
    /// The machine's verdict: unhealthy if a critical check failed, unknown if one has
    /// no result yet, healthy otherwise (non-critical checks do not count).
    pub fn overall(&self) -> CheckStatus {
        let critical = || self.checks.iter().filter(|c| c.critical);
        if critical().any(|c| c.status == CheckStatus::Unhealthy) {
            CheckStatus::Unhealthy
        } else if critical().any(|c| c.status == CheckStatus::Unknown) {
            CheckStatus::Unknown
        } else {
            CheckStatus::Healthy
        }
    }
}

/// Where the API reads health from; skerryd implements it over its health controller.
pub trait HealthSource: Send + Sync + 'static {
    /// The checks as they are now.
    fn health(&self) -> HealthReport;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(critical: bool, status: CheckStatus) -> CheckReport {
        CheckReport {
            name: "c".into(),
            critical,
            status,
            message: String::new(),
            last_run: None,
            consecutive_failures: 0,
        }
    }

    #[test]
    fn only_critical_checks_decide_the_verdict() {
        let mut report = HealthReport {
            checks: vec![
                check(false, CheckStatus::Unhealthy),
                check(true, CheckStatus::Healthy),
            ],
        };
        assert_eq!(report.overall(), CheckStatus::Healthy);
        report.checks.push(check(true, CheckStatus::Unknown));
        assert_eq!(report.overall(), CheckStatus::Unknown);
        report.checks.push(check(true, CheckStatus::Unhealthy));
        assert_eq!(report.overall(), CheckStatus::Unhealthy);
        assert_eq!(HealthReport::default().overall(), CheckStatus::Healthy);
    }
}
