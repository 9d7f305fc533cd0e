//! The service supervisor of `skerryd`: it runs the device's services as processes,
//! in dependency order, restarts them by policy with exponential backoff, probes their
//! health, captures their output in bounded rings and reports every state change as an
//! event with a sequence number.
//!
//! Services are data: a [`ServiceSpec`] is what the operator asked for and a
//! [`ServiceStatus`] is what the supervisor observed; both are serde types that the
//! skerryd wiring turns into runtime resources (spec as input, status as output).
//!
//! The decisions are pure functions, tested without processes or clocks:
//! [`Backoff`] (the next restart delay), [`restart_wanted`] (whether an exit restarts),
//! [`HealthTracker`] (threshold transitions) and [`StartOrder`] (dependency order and
//! its refusals). The I/O around them takes time from tokio, so tests pause it.
//!
//! ```
//! use skerry_supervisor::{
//!     ExitReason, RestartPolicy, ServiceSpec, ServiceState, Supervisor, SupervisorOptions,
//! };
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut hello = ServiceSpec::new("hello", ["echo", "hello"]);
//! hello.restart = RestartPolicy::OnFailure;
//! let mut after = ServiceSpec::new("after", ["sleep", "30"]);
//! after.depends_on = vec!["hello".into()];
//! let (supervisor, mut events) = Supervisor::start(vec![after, hello], SupervisorOptions::default())?;
//! assert_eq!(supervisor.start_order(), ["hello", "after"]);
//! loop {
//!     let event = events.recv().await?;
//!     if event.service == "hello" && event.state == (ServiceState::Exited { exit: ExitReason::Code(0) }) {
//!         break;
//!     }
//! }
//! supervisor.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! # Layout
//! - `spec`: the service spec (command, environment, dependencies, policies, checks).
//! - `status`: observed state and status, the event type.
//! - `backoff`: restart policy and backoff arithmetic.
//! - `health`: threshold tracking and the probe loop.
//! - `probe`: exec, TCP and HTTP probes.
//! - `order`: dependency validation and start order.
//! - `logs`: the bounded line ring for stdout and stderr.
//! - `process`: spawning into a process group, stopping the group, signals.
//! - `runner`: one task per service: wait for dependencies, run, restart.
//! - `supervisor`: the set of services, the event channel, start and stop.

mod backoff;
mod error;
mod health;
mod logs;
mod order;
mod probe;
mod process;
mod runner;
mod spec;
mod status;
mod supervisor;

pub use backoff::{restart_wanted, Backoff};
pub use error::{SpawnError, SupervisorError};
pub use health::{run_health_loop, HealthTracker, HealthTransition};
pub use logs::{LogLine, LogRing, LogSource, LogStream};
pub use order::StartOrder;
pub use probe::{probe, probe_http, ProbeOutcome};
pub use spec::{
    BackoffSpec, HealthCheckKind, HealthCheckSpec, LogLimits, RestartPolicy, ServiceSpec,
    StatusRange,
};
pub use status::{ExitReason, HealthState, ServiceEvent, ServiceState, ServiceStatus};
pub use supervisor::{LogStats, Orphans, ReadyGate, Reconfigured, Supervisor, SupervisorOptions};
