//! The [`ServiceOps`] the API calls: services from their status resources, start /
//! stop / restart through the supervisor (an operator's stop holds the service until
//! an operator starts it), logs from the rings (tail, then follow), health from the
//! check resources.

use std::sync::Arc;

use skerry_api::pb;
use skerry_runtime::Selector;
use skerry_supervisor::{LogLine, LogSource, LogStream, SupervisorError};
use skerryd_core::resources::{CheckState, HealthCheckStatus};
use skerryd_core::{Answers, ServiceOps};
use tokio::sync::mpsc;
use tonic::Status;

use crate::resources::{RunState, ServiceHealth, ServiceStatus};
use crate::Shared;

/// Longest service id accepted (the supervisor's name limit).
pub const MAX_ID_BYTES: usize = 63;
/// Most buffered lines one Logs call asks for.
pub const MAX_TAIL_LINES: u32 = 10_000;
/// How long a start waits for the service's runner to take it up.
const ACCEPT_WAIT: std::time::Duration = std::time::Duration::from_secs(2);
/// Entries a following Logs call buffers for a slow client.
const FOLLOW_BUFFER: usize = 256;

/// The services subsystem as the API sees it.
#[derive(Debug)]
pub(crate) struct Services {
    pub(crate) shared: Arc<Shared>,
}

fn check_id(id: &str) -> Result<(), Status> {
    if id.is_empty() {
        return Err(Status::invalid_argument("the service id is empty"));
    }
    if id.len() > MAX_ID_BYTES {
        return Err(Status::invalid_argument(format!(
            "the service id is {} bytes, at most {MAX_ID_BYTES}",
            id.len()
        )));
    }
    Ok(())
}

fn not_found(id: &str) -> Status {
    Status::not_found(format!("no service named {id:?}"))
}

fn stopped() -> Status {
    Status::unavailable("the daemon is stopping: services are being stopped")
}

fn health_pb(state: CheckState) -> pb::HealthStatus {
    match state {
        CheckState::Unknown => pb::HealthStatus::Unknown,
        CheckState::Healthy => pb::HealthStatus::Healthy,
        CheckState::Unhealthy => pb::HealthStatus::Unhealthy,
    }
}

/// A status resource on the wire.
pub(crate) fn service_pb(id: &str, status: &ServiceStatus) -> pb::Service {
    let state = match status.state {
        RunState::Waiting => pb::ServiceState::Waiting,
        RunState::Starting => pb::ServiceState::Starting,
        RunState::Running => pb::ServiceState::Running,
        RunState::Stopped => pb::ServiceState::Stopped,
        RunState::Failed => pb::ServiceState::Failed,
        RunState::Backoff => pb::ServiceState::Backoff,
    };
    let health = match status.health {
        ServiceHealth::NoCheck => pb::HealthStatus::Unspecified,
        ServiceHealth::Unknown => pb::HealthStatus::Unknown,
        ServiceHealth::Healthy => pb::HealthStatus::Healthy,
        ServiceHealth::Unhealthy => pb::HealthStatus::Unhealthy,
    };
    pb::Service {
        id: id.to_owned(),
        state: state as i32,
        health: health as i32,
        pid: status.pid.unwrap_or(0),
        restarts: status.restarts,
        state_since: Some(prost_types::Timestamp::from(status.since)),
        message: status.message.clone(),
    }
}

/// The overall verdict: unhealthy if a critical check is, unknown if one has no
/// verdict yet, healthy otherwise (also with no critical check).
pub fn overall(checks: &[HealthCheckStatus]) -> pb::HealthStatus {
    let critical = || checks.iter().filter(|c| c.critical);
    if critical().any(|c| c.state == CheckState::Unhealthy) {
        pb::HealthStatus::Unhealthy
    } else if critical().any(|c| c.state == CheckState::Unknown) {
        pb::HealthStatus::Unknown
    } else {
        pb::HealthStatus::Healthy
    }
}

/// What an operator asked for.
#[derive(Debug, Clone, Copy)]
enum Action {
    Start,
    Stop,
    Restart,
}

impl Services {
    async fn act(&self, id: &str, action: Action) -> Result<pb::Service, Status> {
        check_id(id)?;
        let ledger = &self.shared.ledger;
        let mut guard = self.shared.supervisor.lock().await;
        let supervisor = guard.as_mut().ok_or_else(stopped)?;
        if !supervisor.contains(id) {
            return Err(not_found(id));
        }
        let result = match action {
            Action::Stop => {
                ledger.book().held.insert(id.to_owned());
                supervisor.stop_service(id).await
            }
            Action::Start => {
                ledger.book().held.remove(id);
                match supervisor.start_service(id) {
                    Err(SupervisorError::AlreadyRunning { .. }) => Ok(()),
                    other => other,
                }
            }
            Action::Restart => {
                ledger.book().held.remove(id);
                supervisor.restart_service(id).await
            }
        };
        result.map_err(|e| match e {
            SupervisorError::NoSuchService { .. } => not_found(id),
            other => Status::internal(format!("service {id}: {other}")),
        })?;
        let mut status = supervisor.watch_status(id).map_err(|_| not_found(id))?;
        drop(guard);
        if !matches!(action, Action::Stop) {
            // Accepted once its runner took it up (it leaves `stopped` at once).
            let _ = tokio::time::timeout(
                ACCEPT_WAIT,
                status.wait_for(|s| s.state != skerry_supervisor::ServiceState::Stopped),
            )
            .await;
        }
        // The answer is the state now; the pump writes the resource from the events.
        let state = status.borrow().state.clone();
        let book = ledger.book();
        let status = ledger
            .status_for(&book, id, &state)
            .ok_or_else(|| not_found(id))?;
        Ok(service_pb(id, &status))
    }
}

#[tonic::async_trait]
impl ServiceOps for Services {
    async fn list(&self) -> Result<pb::ServiceListResponse, Status> {
        let state = &self.shared.ledger.state;
        let services = state
            .list::<ServiceStatus>(&Selector::all())
            .map_err(|e| Status::internal(format!("listing the services: {e}")))?
            .iter()
            .map(|r| service_pb(&r.metadata.id, &r.spec))
            .collect();
        Ok(pb::ServiceListResponse { services })
    }

    async fn start(&self, id: &str) -> Result<pb::Service, Status> {
        self.act(id, Action::Start).await
    }

    async fn stop(&self, id: &str) -> Result<pb::Service, Status> {
        self.act(id, Action::Stop).await
    }

    async fn restart(&self, id: &str) -> Result<pb::Service, Status> {
        self.act(id, Action::Restart).await
    }

    async fn logs(&self, request: pb::LogsRequest) -> Result<Answers<pb::LogEntry>, Status> {
        let id = request.service_id.as_str();
        check_id(id)?;
        if request.tail_lines > MAX_TAIL_LINES {
            return Err(Status::invalid_argument(format!(
                "tail_lines is {}, at most {MAX_TAIL_LINES}",
                request.tail_lines
            )));
        }
        let source = {
            let guard = self.shared.supervisor.lock().await;
            let supervisor = guard.as_ref().ok_or_else(stopped)?;
            supervisor.log_source(id).map_err(|_| not_found(id))?
        };
        let tail = (request.tail_lines > 0).then_some(request.tail_lines as usize);
        let mut follower = Follower::new(source);
        let first = follower.buffered(tail);
        if !request.follow {
            let stream = tokio_stream::iter(first.into_iter().map(Ok));
            return Ok(Box::pin(stream));
        }
        let (tx, rx) = mpsc::channel(FOLLOW_BUFFER);
        let mut stopping = self.shared.stopping.clone();
        tokio::spawn(async move {
            for entry in first {
                if tx.send(Ok(entry)).await.is_err() {
                    return;
                }
            }
            loop {
                tokio::select! {
                    _ = follower.source.changed() => {}
                    _ = tx.closed() => return,
                    _ = stopping.wait_for(|s| *s) => return,
                }
                for entry in follower.new_lines() {
                    if tx.send(Ok(entry)).await.is_err() {
                        return;
                    }
                }
            }
        });
        Ok(Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx)))
    }

    async fn health(&self) -> Result<pb::HealthResponse, Status> {
        let state = &self.shared.ledger.state;
        let resources = state
            .list::<HealthCheckStatus>(&Selector::all())
            .map_err(|e| Status::internal(format!("listing the health checks: {e}")))?;
        let statuses: Vec<HealthCheckStatus> = resources.iter().map(|r| r.spec.clone()).collect();
        let checks = resources
            .iter()
            .map(|r| pb::HealthCheck {
                name: r.metadata.id.to_string(),
                critical: r.spec.critical,
                status: health_pb(r.spec.state) as i32,
                message: r.spec.message.clone(),
                last_run: r.spec.last_run.map(prost_types::Timestamp::from),
                consecutive_failures: r.spec.consecutive_failures,
            })
            .collect();
        Ok(pb::HealthResponse {
            overall: overall(&statuses) as i32,
            checks,
        })
    }
}

/// Reads a service's two rings in time order and remembers where it is in each.
struct Follower {
    source: LogSource,
    /// The next sequence number to send, per stream (stdout, stderr).
    next: [u64; 2],
}

fn index(stream: LogStream) -> usize {
    match stream {
        LogStream::Stdout => 0,
        LogStream::Stderr => 1,
    }
}

fn entry(line: &LogLine, dropped_before: u64) -> pb::LogEntry {
    let stream = match line.stream {
        LogStream::Stdout => pb::LogStream::Stdout,
        LogStream::Stderr => pb::LogStream::Stderr,
    };
    pb::LogEntry {
        time: Some(prost_types::Timestamp::from(line.time)),
        stream: stream as i32,
        line: line.text.clone().into_bytes(),
        dropped_before,
    }
}

/// Both streams' lines in the order they were stored.
fn merged(mut stdout: Vec<LogLine>, stderr: Vec<LogLine>) -> Vec<LogLine> {
    stdout.extend(stderr);
    stdout.sort_by_key(|l| (l.time, l.seq));
    stdout
}

impl Follower {
    fn new(source: LogSource) -> Self {
        Follower {
            source,
            next: [0, 0],
        }
    }

    /// The buffered lines (the last `tail` of both streams together, or all). The
    /// first line of a stream says how many lines its ring dropped before it, unless
    /// the tail left older lines out on purpose.
    fn buffered(&mut self, tail: Option<usize>) -> Vec<pb::LogEntry> {
        let held = [
            self.source.tail(LogStream::Stdout, None),
            self.source.tail(LogStream::Stderr, None),
        ];
        let oldest_held = [
            held[0].first().map(|l| l.seq),
            held[1].first().map(|l| l.seq),
        ];
        for (i, lines) in held.iter().enumerate() {
            self.next[i] = lines.last().map_or(0, |l| l.seq + 1);
        }
        let [stdout, stderr] = held;
        let mut lines = merged(stdout, stderr);
        if let Some(n) = tail {
            let skip = lines.len().saturating_sub(n);
            lines.drain(..skip);
        }
        let mut first_seen = [false, false];
        lines
            .iter()
            .map(|line| {
                let i = index(line.stream);
                let dropped = if first_seen[i] || oldest_held[i] != Some(line.seq) {
                    0
                } else {
                    line.seq
                };
                first_seen[i] = true;
                entry(line, dropped)
            })
            .collect()
    }

    /// Lines stored since the last call; a gap (the ring dropped lines before they
    /// were read) is counted in `dropped_before`.
    fn new_lines(&mut self) -> Vec<pb::LogEntry> {
        let fresh = [
            self.source.since(LogStream::Stdout, self.next[0]),
            self.source.since(LogStream::Stderr, self.next[1]),
        ];
        let [stdout, stderr] = fresh;
        merged(stdout, stderr)
            .iter()
            .map(|line| {
                let i = index(line.stream);
                let dropped = line.seq.saturating_sub(self.next[i]);
                self.next[i] = line.seq + 1;
                entry(line, dropped)
            })
            .collect()
    }
}
