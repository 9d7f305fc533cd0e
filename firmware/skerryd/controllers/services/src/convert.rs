//! From the config's `ServiceConfig` to what the supervisor runs and the health checks
//! probe, and from the supervisor's state to the status resource.

use std::collections::BTreeMap;

use skerry_config::kinds::{HealthCheck, Probe, RestartPolicy, ServiceConfig};
use skerry_supervisor as sup;

use crate::resources::RunState;

/// Time between SIGTERM and SIGKILL when a service's group is stopped.
pub const STOP_GRACE_MS: u64 = 3_000;
/// The PATH a service gets when its config gives none (nothing is inherited).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// A backoff resets after a run this long.
pub const BACKOFF_RESET_MS: u64 = 60_000;
/// Longest accepted HTTP probe URL.
pub const MAX_URL_BYTES: usize = 2048;

/// The supervisor's spec of one configured service (its checks run here, not in the
/// supervisor: a service has any number of them).
pub fn service_spec(config: &ServiceConfig) -> Result<sup::ServiceSpec, String> {
    let mut spec = sup::ServiceSpec::new(config.name.clone(), config.command.clone());
    spec.env = config.env.clone();
    spec.env
        .entry("PATH".to_owned())
        .or_insert_with(|| DEFAULT_PATH.to_owned());
    spec.depends_on = config.depends_on.clone();
    spec.restart = match config.restart.policy {
        RestartPolicy::Always => sup::RestartPolicy::Always,
        RestartPolicy::OnFailure => sup::RestartPolicy::OnFailure,
        RestartPolicy::Never => sup::RestartPolicy::Never,
    };
    let millis = |d: std::time::Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    spec.backoff = sup::BackoffSpec {
        base_ms: millis(config.restart.initial_backoff.0),
        factor: 2,
        cap_ms: millis(config.restart.max_backoff.0),
        reset_after_ms: BACKOFF_RESET_MS,
    };
    spec.stop_grace_ms = STOP_GRACE_MS;
    // Dependents wait for its checks (run here) to pass.
    spec.gated = !config.health_checks.is_empty();
    spec.validate().map_err(|e| e.to_string())?;
    Ok(spec)
}

/// What one check probes, resolved from the config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckProbe {
    /// Run a command with the service's environment.
    Exec(Vec<String>),
    /// Connect to host:port.
    Tcp {
        /// Host name or address.
        host: String,
        /// Port.
        port: u16,
    },
    /// GET a path; `status` passes.
    Http {
        /// Host name or address.
        host: String,
        /// Port.
        port: u16,
        /// Path with query, starting with `/`.
        path: String,
        /// The status that passes.
        status: u16,
    },
    /// A probe the config gives but this subsystem cannot run: every run fails, saying
    /// why.
    Invalid(String),
}

impl CheckProbe {
    /// Resolves a config probe; the error names what is wrong.
    pub fn from_config(probe: &Probe) -> Result<Self, String> {
        match probe {
            Probe::Exec { command } => {
                if command.is_empty() || command[0].is_empty() {
                    return Err("the exec probe's command is empty".into());
                }
                Ok(CheckProbe::Exec(command.clone()))
            }
            Probe::Tcp { address } => {
                let (host, port) = host_port(address, None)?;
                Ok(CheckProbe::Tcp { host, port })
            }
            Probe::Http { url, expect_status } => {
                if url.len() > MAX_URL_BYTES {
                    return Err(format!("the URL is longer than {MAX_URL_BYTES} bytes"));
                }
                if !(100..=599).contains(expect_status) {
                    return Err(format!("expected status {expect_status} is not 100-599"));
                }
                let rest = url.strip_prefix("http://").ok_or_else(|| {
                    format!("`{url}` is not an http:// URL (https is not probed)")
                })?;
                let (authority, path) = match rest.find('/') {
                    Some(at) => (&rest[..at], &rest[at..]),
                    None => (rest, "/"),
                };
                if path.bytes().any(|b| b.is_ascii_control() || b == b' ') {
                    return Err(format!("the path of `{url}` holds a space or control byte"));
                }
                let (host, port) = host_port(authority, Some(80))?;
                Ok(CheckProbe::Http {
                    host,
                    port,
                    path: path.to_owned(),
                    status: *expect_status,
                })
            }
        }
    }

    /// One probe (the caller bounds it with the check's timeout).
    pub async fn run(&self, env: &BTreeMap<String, String>) -> sup::ProbeOutcome {
        match self {
            CheckProbe::Exec(argv) => {
                let kind = sup::HealthCheckKind::Exec { argv: argv.clone() };
                sup::probe(&kind, env, None).await
            }
            CheckProbe::Tcp { host, port } => {
                let kind = sup::HealthCheckKind::Tcp {
                    host: host.clone(),
                    port: *port,
                };
                sup::probe(&kind, env, None).await
            }
            CheckProbe::Http {
                host,
                port,
                path,
                status,
            } => {
                let expect = sup::StatusRange {
                    min: *status,
                    max: *status,
                };
                sup::probe_http(host, *port, path, expect).await
            }
            CheckProbe::Invalid(why) => sup::ProbeOutcome::Fail(format!("cannot probe: {why}")),
        }
    }
}

/// `host:port` (or `[v6]:port`); `default` when the port is absent and allowed.
fn host_port(text: &str, default: Option<u16>) -> Result<(String, u16), String> {
    let bad = || format!("`{text}` is not host:port");
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or_else(bad)?;
        (host, after.strip_prefix(':'))
    } else {
        match text.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (text, None),
        }
    };
    if host.is_empty() || host.len() > 253 {
        return Err(bad());
    }
    let port = match (port, default) {
        (Some(port), _) => port.parse::<u16>().map_err(|_| bad())?,
        (None, Some(default)) => default,
        (None, None) => return Err(bad()),
    };
    Ok((host.to_owned(), port))
}

/// The longest a pass of `check` vouches for the watchdog: two intervals and a timeout.
pub fn max_age(check: &HealthCheck) -> std::time::Duration {
    check
        .interval
        .0
        .saturating_mul(2)
        .saturating_add(check.timeout.0)
}

/// The status resource's view of a supervisor state: run state, pid, message, exit.
pub fn run_state(
    state: &sup::ServiceState,
    held: bool,
) -> (RunState, Option<u32>, String, Option<String>) {
    use sup::ServiceState as S;
    match state {
        S::Waiting { on } => (
            RunState::Waiting,
            None,
            format!("waiting for {}", on.join(", ")),
            None,
        ),
        S::Starting => (RunState::Starting, None, "starting".into(), None),
        S::Running { pid } | S::Healthy { pid } | S::Unhealthy { pid } => (
            RunState::Running,
            Some(*pid),
            format!("running as pid {pid}"),
            None,
        ),
        // The operator's stop ends the process on the way to `stopped`.
        S::Exited { exit } if held => {
            let text = exit_text(*exit);
            (
                RunState::Stopped,
                None,
                format!("stopped by the operator (exited with {text})"),
                Some(text),
            )
        }
        S::Exited { exit } => {
            let text = exit_text(*exit);
            let state = if exit.is_clean() {
                RunState::Stopped
            } else {
                RunState::Failed
            };
            (state, None, format!("exited with {text}"), Some(text))
        }
        S::SpawnFailed { error } => (RunState::Failed, None, error.clone(), None),
        S::BackingOff { delay_ms, attempt } => (
            RunState::Backoff,
            None,
            format!("restarting in {delay_ms} ms (attempt {attempt})"),
            None,
        ),
        S::Stopped if held => (
            RunState::Stopped,
            None,
            "stopped by the operator".into(),
            None,
        ),
        S::Stopped => (RunState::Stopped, None, "stopped".into(), None),
    }
}

/// "code 3" or "signal 9".
pub fn exit_text(exit: sup::ExitReason) -> String {
    match exit {
        sup::ExitReason::Code(code) => format!("code {code}"),
        sup::ExitReason::Signal(signal) => format!("signal {signal}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_resolve_and_bad_ones_are_named() {
        let http = |url: &str| {
            CheckProbe::from_config(&Probe::Http {
                url: url.into(),
                expect_status: 204,
            })
        };
        assert_eq!(
            http("http://127.0.0.1:8080/healthz?x=1"),
            Ok(CheckProbe::Http {
                host: "127.0.0.1".into(),
                port: 8080,
                path: "/healthz?x=1".into(),
                status: 204
            })
        );
        assert_eq!(
            http("http://localhost"),
            Ok(CheckProbe::Http {
                host: "localhost".into(),
                port: 80,
                path: "/".into(),
                status: 204
            })
        );
        assert!(http("https://x/").unwrap_err().contains("https"));
        assert!(http("http://x:99999/").unwrap_err().contains("host:port"));
        let tcp = |a: &str| CheckProbe::from_config(&Probe::Tcp { address: a.into() });
        assert_eq!(
            tcp("[::1]:22"),
            Ok(CheckProbe::Tcp {
                host: "::1".into(),
                port: 22
            })
        );
        assert!(tcp("nohost").unwrap_err().contains("nohost"));
        assert!(CheckProbe::from_config(&Probe::Exec { command: vec![] })
            .unwrap_err()
            .contains("empty"));
    }

    #[test]
    fn a_config_becomes_a_spec_with_a_path_and_its_backoff() {
        let config: ServiceConfig = serde_json::from_value(serde_json::json!({
            "name": "web", "command": ["sleep", "1"], "dependsOn": ["db"],
            "restart": {"policy": "onFailure", "initialBackoff": "250ms", "maxBackoff": "2s"}
        }))
        .unwrap();
        let spec = service_spec(&config).unwrap();
        assert_eq!(spec.env["PATH"], DEFAULT_PATH);
        assert_eq!(spec.restart, sup::RestartPolicy::OnFailure);
        assert_eq!((spec.backoff.base_ms, spec.backoff.cap_ms), (250, 2_000));
        assert_eq!(spec.depends_on, ["db"]);
        let mut empty = config.clone();
        empty.command.clear();
        assert!(service_spec(&empty).unwrap_err().contains("argv is empty"));
    }
}
