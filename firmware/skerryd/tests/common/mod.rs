//! Fixtures of the API tests: a throwaway machine PKI, fake subsystems that record
//! every call that reaches them, a state with a public and a sensitive resource, an
//! event log, a controller graph, and skerryd's `Machine` served over mutual TLS on a
//! loopback port.

#![allow(dead_code, reason = "each test binary uses a different part")]

use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use skerry_api::{pb, ClientTls, Role, ServerTls};
use skerry_runtime::{
    Controller, ControllerError, Input, Output, ReconcileContext, Requeue, Resource, ResourceSpec,
    Runtime, RuntimeOptions, State,
};
use skerryd::api::Machine;
use skerryd_core::resources::{ActiveService, CheckState, HealthCheckStatus};
use skerryd_core::{Answers, ConfigOps, EventLog, NewEvent, Ops, PowerOps, ServiceOps, UpgradeOps};
use tonic::Status;

// ------------------------------------------------------------------ PKI

use skerry_api::testing::{sample_version, Serving};
pub use skerry_api::testing::{Pem, TestCa};

// ------------------------------------------------------------------ fake subsystems

/// Every call that reached a fake subsystem, in order, as one line each.
#[derive(Debug, Clone, Default)]
pub struct Calls(Arc<Mutex<Vec<String>>>);

impl Calls {
    fn record(&self, call: String) {
        self.0.lock().unwrap().push(call);
    }

    pub fn all(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }

    /// Forgets what was recorded so far.
    pub fn clear(&self) {
        self.0.lock().unwrap().clear();
    }
}

/// The subsystems, faked: each records the call and answers something recognisable.
#[derive(Debug, Clone)]
pub struct Fake {
    pub calls: Calls,
}

fn stream_of<T: Send + 'static>(items: Vec<T>) -> Answers<T> {
    Box::pin(tokio_stream::iter(items.into_iter().map(Ok)))
}

pub fn web_service() -> pb::Service {
    pb::Service {
        id: "web".into(),
        state: pb::ServiceState::Running.into(),
        health: pb::HealthStatus::Healthy.into(),
        pid: 4242,
        restarts: 1,
        state_since: None,
        message: String::new(),
    }
}

#[tonic::async_trait]
impl ConfigOps for Fake {
    async fn apply(
        &self,
        request: pb::ApplyConfigurationRequest,
    ) -> Result<pb::ApplyConfigurationResponse, Status> {
        self.calls.record(format!(
            "apply {} dry_run={} bytes={}",
            request.mode().as_str_name(),
            request.dry_run,
            request.configuration.len()
        ));
        Ok(pb::ApplyConfigurationResponse {
            diff: "+hostname: edge-2\n".into(),
            generation: 7,
            ..Default::default()
        })
    }

    async fn confirm(&self, request: pb::ConfirmConfigurationRequest) -> Result<(), Status> {
        self.calls.record(format!("confirm {}", request.generation));
        Ok(())
    }
}

#[tonic::async_trait]
impl UpgradeOps for Fake {
    async fn upgrade(
        &self,
        request: pb::UpgradeRequest,
    ) -> Result<Answers<pb::UpgradeProgress>, Status> {
        self.calls.record(format!(
            "upgrade {} force={}",
            request.release_version, request.force
        ));
        let phase = |phase: pb::UpgradePhase| pb::UpgradeProgress {
            phase: phase.into(),
            release_version: request.release_version.clone(),
            target_slot: "B".into(),
            ..Default::default()
        };
        Ok(stream_of(vec![
            phase(pb::UpgradePhase::Downloading),
            phase(pb::UpgradePhase::TrialReady),
        ]))
    }

    async fn rollback(&self, request: pb::RollbackRequest) -> Result<pb::RollbackResponse, Status> {
        self.calls.record(format!("rollback {}", request.reason));
        Ok(pb::RollbackResponse {
            target_slot: "A".into(),
        })
    }
}

#[tonic::async_trait]
impl ServiceOps for Fake {
    async fn list(&self) -> Result<pb::ServiceListResponse, Status> {
        self.calls.record("service-list".into());
        Ok(pb::ServiceListResponse {
            services: vec![web_service()],
        })
    }

    async fn start(&self, id: &str) -> Result<pb::Service, Status> {
        self.calls.record(format!("service-start {id}"));
        Ok(web_service())
    }

    async fn stop(&self, id: &str) -> Result<pb::Service, Status> {
        self.calls.record(format!("service-stop {id}"));
        Ok(web_service())
    }

    async fn restart(&self, id: &str) -> Result<pb::Service, Status> {
        self.calls.record(format!("service-restart {id}"));
        Ok(web_service())
    }

    async fn logs(&self, request: pb::LogsRequest) -> Result<Answers<pb::LogEntry>, Status> {
        self.calls.record(format!(
            "logs {} tail={} follow={}",
            request.service_id, request.tail_lines, request.follow
        ));
        Ok(stream_of(vec![pb::LogEntry {
            time: None,
            stream: pb::LogStream::Stdout.into(),
            line: b"listening on :8080".to_vec(),
            dropped_before: 0,
        }]))
    }

    async fn health(&self) -> Result<pb::HealthResponse, Status> {
        self.calls.record("health".into());
        Ok(pb::HealthResponse {
            overall: pb::HealthStatus::Unhealthy.into(),
            checks: vec![pb::HealthCheck {
                name: "web/http".into(),
                critical: true,
                status: pb::HealthStatus::Unhealthy.into(),
                message: "connection refused".into(),
                last_run: None,
                consecutive_failures: 2,
            }],
        })
    }
}

#[tonic::async_trait]
impl PowerOps for Fake {
    async fn reboot(&self) -> Result<(), Status> {
        self.calls.record("reboot".into());
        Ok(())
    }

    async fn shutdown(&self) -> Result<(), Status> {
        self.calls.record("shutdown".into());
        Ok(())
    }
}

// ------------------------------------------------------------------ state, graph

/// A public resource type a test controller writes (namespace `widgets`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Widget {
    pub size: u32,
    pub label: String,
}

impl ResourceSpec for Widget {
    const TYPE: &'static str = "Widgets.test.skerry.dev";
    const NAMESPACE: &'static str = "widgets";
}

/// A controller that only declares what it reads and writes, for the graph.
struct WidgetMaker;

impl Controller for WidgetMaker {
    fn name(&self) -> &str {
        "widget-maker"
    }

    fn inputs(&self) -> Vec<Input> {
        vec![
            Input::weak::<HealthCheckStatus>(),
            Input::strong::<ActiveService>(),
        ]
    }

    fn outputs(&self) -> Vec<Output> {
        vec![Output::exclusive::<Widget>()]
    }

    async fn reconcile(&mut self, _ctx: &mut ReconcileContext) -> Result<Requeue, ControllerError> {
        Ok(Requeue::OnChange)
    }
}

pub fn health_check() -> HealthCheckStatus {
    HealthCheckStatus {
        critical: true,
        state: CheckState::Healthy,
        message: "it's: fine".into(),
        last_run: Some(UNIX_EPOCH + Duration::from_secs(1_700_000_000)),
        consecutive_failures: 0,
        since: None,
    }
}

/// A service config whose environment holds a secret.
pub fn secret_service() -> ActiveService {
    serde_json::from_value(serde_json::json!({
        "name": "web",
        "command": ["/usr/bin/web", "--port", "8080"],
        "env": {"API_TOKEN": "s3cret-t0ken"},
    }))
    .unwrap()
}

/// The state: a public health check `web/http`, the sensitive service config `web`,
/// and a widget `w1`; the controller graph of `widget-maker`.
fn state_and_graph() -> (State, skerry_runtime::DependencyGraph) {
    let state = State::in_memory();
    state
        .create(Resource::new("web/http", health_check()))
        .unwrap();
    state
        .create(Resource::new("web", secret_service()))
        .unwrap();
    let mut runtime = Runtime::new(state.clone(), RuntimeOptions::default());
    runtime.register(WidgetMaker).unwrap();
    let graph = runtime.graph();
    state
        .apply_owned(
            "w1",
            Some("widget-maker"),
            Widget {
                size: 3,
                label: "first".into(),
            },
        )
        .unwrap();
    (state, graph)
}

// ------------------------------------------------------------------ serving

/// skerryd's Machine served on a loopback port.
pub struct Served {
    pub endpoint: String,
    pub ca: TestCa,
    pub calls: Calls,
    pub state: State,
    pub events: EventLog,
    /// The ids of the two events the log starts with.
    pub first_events: [String; 2],
    serving: Serving,
}

impl Served {
    pub async fn start() -> Served {
        let ca = TestCa::new("machine CA").unwrap();
        let tls = ca.server_tls().unwrap();
        Served::start_with(ca, tls).await
    }

    /// Serves with TLS material loaded elsewhere; `ca` signs the clients.
    pub async fn start_with(ca: TestCa, tls: ServerTls) -> Served {
        let calls = Calls::default();
        let fake = Arc::new(Fake {
            calls: calls.clone(),
        });
        let ops = Ops {
            config: fake.clone(),
            upgrade: fake.clone(),
            services: fake.clone(),
            power: fake,
        };
        let (state, graph) = state_and_graph();
        let events = EventLog::new(3);
        let first_events = [
            events.push(NewEvent::new("daemon.started", "skerryd started")),
            events.push(
                NewEvent::new("service.state", "web is running")
                    .about("services", "Services.services.skerry.dev", "web")
                    .with("state", "running"),
            ),
        ];
        let machine = Machine::new(ops, state.clone(), events.clone(), graph, sample_version());
        let serving = Serving::spawn(|listener, shutdown| async move {
            skerryd::api::serve(listener, &tls, machine, shutdown).await
        })
        .await
        .unwrap();
        Served {
            endpoint: serving.endpoint.clone(),
            ca,
            calls,
            state,
            events,
            first_events,
            serving,
        }
    }

    pub fn client_tls(&self, pem: &Pem) -> ClientTls {
        self.ca.client_tls(pem)
    }

    pub async fn client(
        &self,
        role: Role,
    ) -> pb::machine_service_client::MachineServiceClient<tonic::transport::Channel> {
        let pem = self.ca.client_for(role).unwrap();
        skerry_api::connect(&self.endpoint, &self.client_tls(&pem))
            .await
            .unwrap()
    }

    /// Stops the server and checks it ended cleanly.
    pub async fn stop(self) {
        self.serving.stop().await.unwrap();
    }
}
