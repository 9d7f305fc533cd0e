//! What the operator asks for: one service's command, environment, dependencies,
//! restart policy, health check and log limits. Durations are whole milliseconds so the
//! serialized form reads the same in YAML, JSON and the runtime's log.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::SupervisorError;

/// Longest accepted argv, in arguments (each bounded by [`MAX_ARG_BYTES`]).
pub const MAX_ARGS: usize = 4096;
/// Longest accepted argument or environment value, in bytes.
pub const MAX_ARG_BYTES: usize = 128 * 1024;
/// Most dependencies one service may name.
pub const MAX_DEPENDENCIES: usize = 64;
/// Largest log ring a spec may ask for, per stream.
pub const MAX_LOG_RING_BYTES: usize = 16 * 1024 * 1024;

/// One supervised service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceSpec {
    /// Unique name: letters, digits, `-`, `_`, `.`; 1 to 63 bytes.
    pub name: String,
    /// The program and its arguments, run directly (never through a shell).
    pub argv: Vec<String>,
    /// The whole environment of the process (nothing is inherited).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Working directory; the supervisor's own when absent.
    #[serde(default)]
    pub working_dir: Option<PathBuf>,
    /// Services that must be ready (healthy if they have a check, running otherwise)
    /// before this one starts; it is stopped before them.
    #[serde(default)]
    pub depends_on: Vec<String>,
    #[serde(default)]
    pub restart: RestartPolicy,
    #[serde(default)]
    pub backoff: BackoffSpec,
    #[serde(default)]
    pub health: Option<HealthCheckSpec>,
    /// Its dependents also wait until the caller declares it ready through its
    /// [`ReadyGate`](crate::ReadyGate) (for checks run outside the supervisor).
    #[serde(default)]
    pub gated: bool,
    /// Time between SIGTERM and SIGKILL when stopping the process group.
    #[serde(default = "default_stop_grace_ms")]
    pub stop_grace_ms: u64,
    #[serde(default)]
    pub logs: LogLimits,
}

fn default_stop_grace_ms() -> u64 {
    10_000
}

impl ServiceSpec {
    /// A spec with defaults for everything but the name and argv.
    pub fn new(name: impl Into<String>, argv: impl IntoIterator<Item = impl Into<String>>) -> Self {
        ServiceSpec {
            name: name.into(),
            argv: argv.into_iter().map(Into::into).collect(),
            env: BTreeMap::new(),
            working_dir: None,
            depends_on: Vec::new(),
            restart: RestartPolicy::default(),
            backoff: BackoffSpec::default(),
            health: None,
            gated: false,
            stop_grace_ms: default_stop_grace_ms(),
            logs: LogLimits::default(),
        }
    }

    pub fn stop_grace(&self) -> Duration {
        Duration::from_millis(self.stop_grace_ms)
    }

    /// Checks everything about one spec that does not need the others.
    pub fn validate(&self) -> Result<(), SupervisorError> {
        let bad = |reason: String| SupervisorError::InvalidSpec {
            service: self.name.clone(),
            reason,
        };
        if !valid_name(&self.name) {
            return Err(bad(
                "name must be 1-63 bytes of letters, digits, '-', '_' or '.'".into(),
            ));
        }
        if self.argv.is_empty() || self.argv[0].is_empty() {
            return Err(bad("argv is empty: give the program to run".into()));
        }
        if self.argv.len() > MAX_ARGS {
            return Err(bad(format!(
                "argv has {} arguments, at most {MAX_ARGS}",
                self.argv.len()
            )));
        }
        for (i, arg) in self.argv.iter().enumerate() {
            if arg.len() > MAX_ARG_BYTES || arg.contains('\0') {
                return Err(bad(format!(
                    "argument {i} is longer than {MAX_ARG_BYTES} bytes or holds a NUL"
                )));
            }
        }
        for (key, value) in &self.env {
            if key.is_empty() || key.contains('=') || key.contains('\0') {
                return Err(bad(format!(
                    "environment name {key:?} is empty or holds '=' or NUL"
                )));
            }
            if value.len() > MAX_ARG_BYTES || value.contains('\0') {
                return Err(bad(format!(
                    "environment value of {key} is too long or holds a NUL"
                )));
            }
        }
        if self.depends_on.len() > MAX_DEPENDENCIES {
            return Err(bad(format!("more than {MAX_DEPENDENCIES} dependencies")));
        }
        if self.depends_on.iter().any(|d| d == &self.name) {
            return Err(bad("depends on itself".into()));
        }
        self.backoff
            .validate()
            .map_err(|r| bad(format!("backoff: {r}")))?;
        if let Some(check) = &self.health {
            check.validate().map_err(|r| bad(format!("health: {r}")))?;
        }
        self.logs
            .validate()
            .map_err(|r| bad(format!("logs: {r}")))?;
        Ok(())
    }
}

fn valid_name(name: &str) -> bool {
    (1..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// When an exited process is started again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestartPolicy {
    /// After every exit, clean or not.
    #[default]
    Always,
    /// After a non-zero exit, a signal or a failed spawn; a clean exit stays exited.
    OnFailure,
    /// Never: the first exit is final.
    Never,
}

/// Exponential restart backoff: `base * factor^n`, capped, reset once a run lasted
/// `reset_after_ms`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackoffSpec {
    pub base_ms: u64,
    /// Growth per consecutive failure, as a whole factor (2 doubles).
    pub factor: u32,
    pub cap_ms: u64,
    /// A run at least this long counts as stable and resets the backoff.
    pub reset_after_ms: u64,
}

impl Default for BackoffSpec {
    fn default() -> Self {
        BackoffSpec {
            base_ms: 100,
            factor: 2,
            cap_ms: 30_000,
            reset_after_ms: 60_000,
        }
    }
}

impl BackoffSpec {
    fn validate(&self) -> Result<(), String> {
        if self.factor == 0 {
            return Err("factor must be at least 1".into());
        }
        if self.cap_ms < self.base_ms {
            return Err(format!(
                "cap_ms {} is below base_ms {}",
                self.cap_ms, self.base_ms
            ));
        }
        Ok(())
    }
}

/// A health check: what to probe, how often and how many results flip the state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthCheckSpec {
    pub kind: HealthCheckKind,
    pub interval_ms: u64,
    pub timeout_ms: u64,
    /// Consecutive passes that make the service healthy.
    pub success_threshold: u32,
    /// Consecutive failures that make it unhealthy.
    pub failure_threshold: u32,
    /// A critical check gates the watchdog and upgrade probation.
    #[serde(default)]
    pub critical: bool,
}

impl HealthCheckSpec {
    pub fn new(kind: HealthCheckKind) -> Self {
        HealthCheckSpec {
            kind,
            interval_ms: 5_000,
            timeout_ms: 2_000,
            success_threshold: 1,
            failure_threshold: 3,
            critical: false,
        }
    }

    pub fn interval(&self) -> Duration {
        Duration::from_millis(self.interval_ms)
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    fn validate(&self) -> Result<(), String> {
        if self.interval_ms == 0 || self.timeout_ms == 0 {
            return Err("interval_ms and timeout_ms must be above zero".into());
        }
        if self.success_threshold == 0 || self.failure_threshold == 0 {
            return Err("thresholds must be at least 1".into());
        }
        match &self.kind {
            HealthCheckKind::Exec { argv } => {
                if argv.is_empty() || argv[0].is_empty() {
                    return Err("exec check has an empty argv".into());
                }
                if argv.len() > MAX_ARGS || argv.iter().any(|a| a.len() > MAX_ARG_BYTES) {
                    return Err("exec check argv is too long".into());
                }
            }
            HealthCheckKind::Tcp { host, .. } => {
                if host.is_empty() || host.len() > 253 {
                    return Err("tcp check host must be 1-253 bytes".into());
                }
            }
            HealthCheckKind::Http { path, expect, .. } => {
                if !path.starts_with('/') || path.len() > 2048 {
                    return Err(
                        "http check path must start with '/' and be at most 2048 bytes".into(),
                    );
                }
                if path.bytes().any(|b| b.is_ascii_control() || b == b' ') {
                    return Err("http check path holds a space or control byte".into());
                }
                if expect.min > expect.max || expect.min < 100 || expect.max > 599 {
                    return Err(format!(
                        "http status range {}-{} is not within 100-599 in order",
                        expect.min, expect.max
                    ));
                }
            }
        }
        Ok(())
    }
}

/// What a health check probes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum HealthCheckKind {
    /// Run a command (no shell); exit status 0 within the timeout passes.
    Exec { argv: Vec<String> },
    /// Connect to `host:port` within the timeout.
    Tcp { host: String, port: u16 },
    /// `GET http://127.0.0.1:port/path`; a status in `expect` passes.
    Http {
        port: u16,
        path: String,
        #[serde(default)]
        expect: StatusRange,
    },
}

/// An inclusive range of HTTP status codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusRange {
    pub min: u16,
    pub max: u16,
}

impl Default for StatusRange {
    fn default() -> Self {
        StatusRange { min: 200, max: 399 }
    }
}

impl StatusRange {
    pub fn contains(&self, status: u16) -> bool {
        (self.min..=self.max).contains(&status)
    }
}

/// Bounds of the stdout and stderr rings (each stream has its own ring).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogLimits {
    /// Bytes kept per stream, counting each line's text and a fixed per-line overhead.
    pub ring_bytes: usize,
    /// Longest line kept whole; a longer one is cut into pieces of this size.
    pub max_line_bytes: usize,
}

impl Default for LogLimits {
    fn default() -> Self {
        LogLimits {
            ring_bytes: 256 * 1024,
            max_line_bytes: 8 * 1024,
        }
    }
}

impl LogLimits {
    fn validate(&self) -> Result<(), String> {
        if self.ring_bytes == 0 || self.ring_bytes > MAX_LOG_RING_BYTES {
            return Err(format!("ring_bytes must be 1..={MAX_LOG_RING_BYTES}"));
        }
        if self.max_line_bytes == 0 || self.max_line_bytes > self.ring_bytes {
            return Err("max_line_bytes must be 1..=ring_bytes".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spec_reads_from_json_with_defaults() {
        let spec: ServiceSpec = serde_json::from_str(
            r#"{"name":"web","argv":["/usr/bin/web","--port","80"],"depends_on":["net"],
                "restart":"on-failure",
                "health":{"kind":{"type":"http","port":80,"path":"/healthz"},
                          "interval_ms":1000,"timeout_ms":500,"success_threshold":1,
                          "failure_threshold":3,"critical":true}}"#,
        )
        .unwrap();
        assert_eq!(spec.restart, RestartPolicy::OnFailure);
        assert_eq!(spec.backoff, BackoffSpec::default());
        assert_eq!(spec.stop_grace(), Duration::from_secs(10));
        let check = spec.health.as_ref().unwrap();
        assert!(check.critical);
        assert_eq!(
            check.kind,
            HealthCheckKind::Http {
                port: 80,
                path: "/healthz".into(),
                expect: StatusRange { min: 200, max: 399 }
            }
        );
        spec.validate().unwrap();
        let again: ServiceSpec =
            serde_json::from_str(&serde_json::to_string(&spec).unwrap()).unwrap();
        assert_eq!(again, spec);
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err =
            serde_json::from_str::<ServiceSpec>(r#"{"name":"a","argv":["x"],"restrat":"never"}"#)
                .unwrap_err();
        assert!(err.to_string().contains("restrat"), "{err}");
    }

    #[test]
    fn bad_specs_name_what_is_wrong() {
        let cases: Vec<(ServiceSpec, &str)> = vec![
            (ServiceSpec::new("", ["x"]), "name must be"),
            (ServiceSpec::new("a b", ["x"]), "name must be"),
            (ServiceSpec::new("a", Vec::<String>::new()), "argv is empty"),
            (
                ServiceSpec {
                    env: [("A=B".to_string(), "1".to_string())].into(),
                    ..ServiceSpec::new("a", ["x"])
                },
                "environment name",
            ),
            (
                ServiceSpec {
                    backoff: BackoffSpec {
                        factor: 0,
                        ..BackoffSpec::default()
                    },
                    ..ServiceSpec::new("a", ["x"])
                },
                "factor",
            ),
            (
                ServiceSpec {
                    backoff: BackoffSpec {
                        cap_ms: 1,
                        ..BackoffSpec::default()
                    },
                    ..ServiceSpec::new("a", ["x"])
                },
                "cap_ms",
            ),
            (
                ServiceSpec {
                    logs: LogLimits {
                        ring_bytes: 10,
                        max_line_bytes: 20,
                    },
                    ..ServiceSpec::new("a", ["x"])
                },
                "max_line_bytes",
            ),
            (
                ServiceSpec {
                    logs: LogLimits {
                        ring_bytes: usize::MAX,
                        max_line_bytes: 20,
                    },
                    ..ServiceSpec::new("a", ["x"])
                },
                "ring_bytes",
            ),
            (
                ServiceSpec {
                    health: Some(HealthCheckSpec::new(HealthCheckKind::Http {
                        port: 1,
                        path: "/".into(),
                        expect: StatusRange { min: 500, max: 200 },
                    })),
                    ..ServiceSpec::new("a", ["x"])
                },
                "status range",
            ),
            (
                ServiceSpec {
                    health: Some(HealthCheckSpec::new(HealthCheckKind::Http {
                        port: 1,
                        path: "/a b".into(),
                        expect: StatusRange::default(),
                    })),
                    ..ServiceSpec::new("a", ["x"])
                },
                "space",
            ),
            (
                ServiceSpec {
                    health: Some(HealthCheckSpec {
                        failure_threshold: 0,
                        ..HealthCheckSpec::new(HealthCheckKind::Exec {
                            argv: vec!["t".into()],
                        })
                    }),
                    ..ServiceSpec::new("a", ["x"])
                },
                "thresholds",
            ),
        ];
        for (spec, want) in cases {
            let err = spec.validate().unwrap_err().to_string();
            assert!(err.contains(want), "{err:?} should mention {want:?}");
        }
    }
}
