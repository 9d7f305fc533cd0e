//! Typed errors: what was refused and which service it concerns.

use std::path::PathBuf;

/// A set of services refused before anything ran, or a request about one service.
#[derive(Debug, thiserror::Error)]
pub enum SupervisorError {
    #[error("service {service}: {reason}")]
    InvalidSpec { service: String, reason: String },
    #[error("service {service} is defined twice")]
    DuplicateService { service: String },
    #[error("service {service} depends on {dependency}, which is not defined")]
    UnknownDependency { service: String, dependency: String },
    #[error("services depend on each other in a cycle: {}", cycle.join(" -> "))]
    DependencyCycle { cycle: Vec<String> },
    #[error("the supervisor must be started inside a tokio runtime")]
    NoRuntime,
    #[error("service {service} is running: stop it first")]
    AlreadyRunning { service: String },
    #[error("no service named {service}")]
    NoSuchService { service: String },
    #[error("could not become a child subreaper (to reap orphaned service processes)")]
    Subreaper { source: std::io::Error },
    #[error("too many services: {count}, at most {limit}")]
    TooManyServices { count: usize, limit: usize },
}

/// Why a process could not be started; kept in the service's status.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error("program {program} not found")]
    NotFound {
        program: String,
        source: std::io::Error,
    },
    #[error("program {program} is not executable (permission denied)")]
    PermissionDenied {
        program: String,
        source: std::io::Error,
    },
    #[error("working directory {} is missing or unusable", dir.display())]
    WorkingDir {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("could not start {program}")]
    Other {
        program: String,
        source: std::io::Error,
    },
    #[error("started {program} but the kernel gave no pid (it had already been reaped)")]
    NoPid { program: String },
}
