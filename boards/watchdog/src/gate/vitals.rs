//! Leases and health reports the callers renew, and the verdict the feed loop reads.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::clock::Clock;

/// At most this many vitals are registered (health checks come from the config).
pub const MAX_VITALS: usize = 256;
/// A failure reason is cut to this many bytes.
pub const MAX_REASON_LEN: usize = 512;

/// What a vital vouches for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VitalKind {
    /// A critical controller reconciled.
    Controller,
    /// The state store completed a write.
    StateWrite,
    /// A critical health check passed.
    HealthCheck,
}

impl fmt::Display for VitalKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Controller => "controller",
            Self::StateWrite => "state write",
            Self::HealthCheck => "health check",
        })
    }
}

/// A registration the vitals refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VitalsError {
    /// The name is taken.
    #[error("a vital named {name:?} is already registered")]
    Duplicate {
        /// The name.
        name: String,
    },
    /// A zero deadline could never be met.
    #[error(
        "the {kind} {name:?} has a zero deadline; give it the longest time it may go unrenewed"
    )]
    ZeroDeadline {
        /// What it vouches for.
        kind: VitalKind,
        /// The name.
        name: String,
    },
    /// Too many vitals.
    #[error("cannot register {name:?}: at most {limit} vitals are watched")]
    TooMany {
        /// The name.
        name: String,
        /// [`MAX_VITALS`].
        limit: usize,
    },
}

/// Why the watchdog is not fed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// A lease or a pass was not renewed within its deadline.
    Overdue {
        /// What it vouches for.
        kind: VitalKind,
        /// Its name.
        name: String,
        /// How long past its deadline.
        late_by: Duration,
    },
    /// A health check reports failing (or has not reported yet).
    Failing {
        /// The check.
        name: String,
        /// What it said.
        reason: String,
    },
    /// Nothing of this kind is registered: without it the gate would be a plain ticker.
    Missing {
        /// The kind nobody vouches for.
        kind: VitalKind,
    },
    /// A health check the gate requires (see [`Vitals::require_health_checks`]) is not
    /// registered: nobody runs it.
    Unregistered {
        /// The check's name.
        name: String,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Overdue {
                kind,
                name,
                late_by,
            } => {
                write!(f, "{kind} {name:?} is {late_by:?} past its deadline")
            }
            Self::Failing { name, reason } => write!(f, "health check {name:?} fails: {reason}"),
            Self::Missing { kind } => write!(f, "no {kind} is registered"),
            Self::Unregistered { name } => {
                write!(f, "health check {name:?} is required but nobody reports it")
            }
        }
    }
}

/// Every reason the watchdog is not fed right now.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("watchdog withheld: {}", list(.problems))]
pub struct Unhealthy {
    /// The problems, in registration order.
    pub problems: Vec<Problem>,
}

fn list(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

#[derive(Debug)]
struct Entry {
    kind: VitalKind,
    name: String,
    deadline: Duration,
    renewed: Instant,
    failure: Option<String>,
}

struct Shared {
    clock: Box<dyn Clock>,
    entries: Mutex<Vec<Entry>>,
    required: Mutex<Vec<String>>,
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field("entries", &self.entries)
            .finish_non_exhaustive()
    }
}

impl Shared {
    fn entries(&self) -> MutexGuard<'_, Vec<Entry>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn update(&self, index: usize, failure: Option<String>) {
        let now = self.clock.now();
        if let Some(entry) = self.entries().get_mut(index) {
            entry.renewed = now;
            entry.failure = failure;
        }
    }
}

/// The registry of leases and health reports. Clones share it.
#[derive(Debug, Clone)]
pub struct Vitals {
    shared: Arc<Shared>,
}

impl Vitals {
    /// An empty registry on `clock`.
    pub fn new(clock: impl Clock) -> Self {
        Self {
            shared: Arc::new(Shared {
                clock: Box::new(clock),
                entries: Mutex::new(Vec::new()),
                required: Mutex::new(Vec::new()),
            }),
        }
    }

    /// A critical controller's lease: it must be renewed on every reconcile, at most
    /// `deadline` apart. The first deadline runs from now.
    pub fn controller(&self, name: &str, deadline: Duration) -> Result<Lease, VitalsError> {
        self.register(VitalKind::Controller, name, deadline, None)
            .map(|index| Lease {
                vitals: self.clone(),
                index,
            })
    }

    /// The state store's lease: it must be renewed on every completed write, at most
    /// `deadline` apart (an idle store makes a probe write to renew it).
    pub fn state_writes(&self, name: &str, deadline: Duration) -> Result<Lease, VitalsError> {
        self.register(VitalKind::StateWrite, name, deadline, None)
            .map(|index| Lease {
                vitals: self.clone(),
                index,
            })
    }

    /// A critical health check's report. It fails until the first pass, and a pass counts
    /// for `max_age`.
    pub fn health_check(&self, name: &str, max_age: Duration) -> Result<HealthReport, VitalsError> {
        let pending = Some("no result yet".to_owned());
        self.register(VitalKind::HealthCheck, name, max_age, pending)
            .map(|index| HealthReport {
                vitals: self.clone(),
                index,
            })
    }

    fn register(
        &self,
        kind: VitalKind,
        name: &str,
        deadline: Duration,
        failure: Option<String>,
    ) -> Result<usize, VitalsError> {
        let name = name.to_owned();
        if deadline.is_zero() {
            return Err(VitalsError::ZeroDeadline { kind, name });
        }
        let now = self.shared.clock.now();
        let mut entries = self.shared.entries();
        if entries.iter().any(|e| e.name == name) {
            return Err(VitalsError::Duplicate { name });
        }
        if entries.len() >= MAX_VITALS {
            return Err(VitalsError::TooMany {
                name,
                limit: MAX_VITALS,
            });
        }
        entries.push(Entry {
            kind,
            name,
            deadline,
            renewed: now,
            failure,
        });
        Ok(entries.len() - 1)
    }

    /// Names the health checks that must be registered (and pass) for the watchdog to
    /// be fed, replacing the previous list: a check the config gates on but nobody runs
    /// withholds the feeds instead of being skipped. At most [`MAX_VITALS`] names.
    pub fn require_health_checks(&self, names: &[String]) -> Result<(), VitalsError> {
        if names.len() > MAX_VITALS {
            return Err(VitalsError::TooMany {
                name: names[MAX_VITALS].clone(),
                limit: MAX_VITALS,
            });
        }
        *self
            .shared
            .required
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = names.to_vec();
        Ok(())
    }

    /// Whether the watchdog may be fed now: every lease and pass within its deadline, no
    /// check failing, every required check registered, and at least one controller and
    /// one state-write lease registered.
    pub fn check(&self) -> Result<(), Unhealthy> {
        let now = self.shared.clock.now();
        let required = self
            .shared
            .required
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let entries = self.shared.entries();
        let mut problems = Vec::new();
        for kind in [VitalKind::Controller, VitalKind::StateWrite] {
            if !entries.iter().any(|e| e.kind == kind) {
                problems.push(Problem::Missing { kind });
            }
        }
        for name in required {
            if !entries
                .iter()
                .any(|e| e.kind == VitalKind::HealthCheck && e.name == name)
            {
                problems.push(Problem::Unregistered { name });
            }
        }
        for entry in entries.iter() {
            let age = now.saturating_duration_since(entry.renewed);
            if let Some(reason) = &entry.failure {
                problems.push(Problem::Failing {
                    name: entry.name.clone(),
                    reason: reason.clone(),
                });
            } else if age >= entry.deadline {
                problems.push(Problem::Overdue {
                    kind: entry.kind,
                    name: entry.name.clone(),
                    late_by: age - entry.deadline,
                });
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Unhealthy { problems })
        }
    }
}

/// A controller's or the state store's lease.
#[derive(Debug, Clone)]
pub struct Lease {
    vitals: Vitals,
    index: usize,
}

impl Lease {
    /// Vouches again: the controller reconciled, or a write completed.
    pub fn renew(&self) {
        self.vitals.shared.update(self.index, None);
    }

    /// Changes the longest time the lease may go unrenewed (e.g. after the watchdog's
    /// timeout changed). A zero deadline is refused.
    pub fn set_deadline(&self, deadline: Duration) -> Result<(), VitalsError> {
        let mut entries = self.vitals.shared.entries();
        let Some(entry) = entries.get_mut(self.index) else {
            return Ok(());
        };
        if deadline.is_zero() {
            return Err(VitalsError::ZeroDeadline {
                kind: entry.kind,
                name: entry.name.clone(),
            });
        }
        entry.deadline = deadline;
        Ok(())
    }
}

/// A health check's report.
#[derive(Debug, Clone)]
pub struct HealthReport {
    vitals: Vitals,
    index: usize,
}

impl HealthReport {
    /// The check passed just now.
    pub fn pass(&self) {
        self.vitals.shared.update(self.index, None);
    }

    /// The check failed; `reason` is kept (cut to [`MAX_REASON_LEN`] bytes).
    pub fn fail(&self, reason: &str) {
        let mut cut = MAX_REASON_LEN.min(reason.len());
        while !reason.is_char_boundary(cut) {
            cut -= 1;
        }
        self.vitals
            .shared
            .update(self.index, Some(reason[..cut].to_owned()));
    }
}

#[cfg(test)]
mod tests;
