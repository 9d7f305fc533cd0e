//! [`Machine`]: the `MachineService` behind the role gate. Each method checks the
//! request's shape and sizes, then reads the state or the event log, or hands the
//! request to the subsystem's [`Ops`].

use std::sync::Arc;

use futures_util::{stream, StreamExt as _};
use skerry_api::pb;
use skerry_api::{MachineService, VersionInfo};
use skerry_runtime::controller::EdgeKind;
use skerry_runtime::{DependencyGraph, State};
use skerryd_core::{Answers, EventLog, Ops};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tonic::{Request, Response, Status};

use super::limits::{
    required, text, MAX_FOLLOW_STREAMS, MAX_REASON_BYTES, MAX_RELEASE_VERSION_BYTES,
    MAX_SERVICE_ID_BYTES, MAX_TAIL_LINES,
};
use super::resources::Reader;

/// The machine API as skerryd serves it. Cheap to clone; it holds no state of its own.
#[derive(Clone)]
pub struct Machine {
    ops: Ops,
    state: State,
    events: EventLog,
    graph: Arc<DependencyGraph>,
    version: VersionInfo,
    /// Set when serving stops: every open stream ends, so the server's graceful
    /// shutdown does not wait on watches that never finish.
    closing: Arc<watch::Sender<bool>>,
    /// One permit per open follow stream (see [`MAX_FOLLOW_STREAMS`]).
    follows: Arc<Semaphore>,
}

impl std::fmt::Debug for Machine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Machine")
            .field("version", &self.version)
            .field("controllers", &self.graph.controllers)
            .finish_non_exhaustive()
    }
}

impl Machine {
    /// The API over the subsystems' `ops`, the runtime's `state`, the daemon's event
    /// log, the controller graph (`Runtime::graph()` or `RuntimeHandle::graph()`) and
    /// what Version reports.
    pub fn new(
        ops: Ops,
        state: State,
        events: EventLog,
        graph: DependencyGraph,
        version: VersionInfo,
    ) -> Self {
        Machine {
            ops,
            state,
            events,
            graph: Arc::new(graph),
            version,
            closing: Arc::new(watch::channel(false).0),
            follows: Arc::new(Semaphore::new(MAX_FOLLOW_STREAMS)),
        }
    }

    /// Ends every open stream (Events and resource watches, Logs with follow, Upgrade
    /// progress) with UNAVAILABLE, and every stream opened from now on at once.
    /// [`serve`](super::serve) calls it when its shutdown future completes.
    pub fn close_streams(&self) {
        self.closing.send_replace(true);
    }

    /// `answers`, ended with UNAVAILABLE once the machine closes its streams.
    /// A permit for one more follow stream, or RESOURCE_EXHAUSTED naming the limit.
    fn follow_permit(&self, method: &str) -> Result<OwnedSemaphorePermit, Status> {
        self.follows.clone().try_acquire_owned().map_err(|_| {
            Status::resource_exhausted(format!(
                "{method}: {MAX_FOLLOW_STREAMS} streams already follow this machine (Events with watch, ResourceWatch, Logs with follow), the most it keeps open at once; close one and call again"
            ))
        })
    }

    fn until_closing<T: Send + 'static>(&self, answers: Answers<T>) -> Answers<T> {
        self.until_closing_holding(answers, None)
    }

    /// [`until_closing`](Self::until_closing), holding `permit` until the stream is
    /// dropped (the client went away) or ends.
    fn until_closing_holding<T: Send + 'static>(
        &self,
        answers: Answers<T>,
        permit: Option<OwnedSemaphorePermit>,
    ) -> Answers<T> {
        let closing = self.closing.subscribe();
        Box::pin(stream::unfold(
            Some((answers, closing, permit)),
            |open| async move {
                let (mut answers, mut closing, permit) = open?;
                let closed = async {
                    if closing.wait_for(|c| *c).await.is_err() {
                        // The machine is gone without closing: nothing will close it.
                        std::future::pending::<()>().await;
                    }
                };
                // What the stream already holds goes out first (an upgrade's last
                // TRIAL_READY comes just before the reboot that closes the streams).
                tokio::select! {
                    biased;
                    item = answers.next() => item.map(|item| (item, Some((answers, closing, permit)))),
                    () = closed => Some((
                        Err(Status::unavailable(
                            "skerryd is stopping: this stream ended; call again once it is back (Events resume with after_id set to the last event received)",
                        )),
                        None,
                    )),
                }
            },
        ))
    }
}

/// The role the gate read from the caller's certificate.
fn caller<T>(request: &Request<T>) -> Result<skerry_api::Role, Status> {
    request
        .extensions()
        .get::<skerry_api::Role>()
        .copied()
        .ok_or_else(|| {
            Status::unauthenticated(
                "the call carries no role: it did not pass the role gate (serve the machine with skerryd::api::serve)",
            )
        })
}

fn service_id(id: &str) -> Result<&str, Status> {
    required("id", id, MAX_SERVICE_ID_BYTES)?;
    Ok(id)
}

fn action(service: pb::Service) -> Response<pb::ServiceActionResponse> {
    Response::new(pb::ServiceActionResponse {
        service: Some(service),
    })
}

/// The request's enum value, refusing UNSPECIFIED and values this server does not know.
fn apply_mode(value: i32) -> Result<pb::ApplyMode, Status> {
    match pb::ApplyMode::try_from(value) {
        Ok(pb::ApplyMode::Unspecified) | Err(_) => Err(Status::invalid_argument(format!(
            "mode {value} is not an apply mode: choose APPLY_MODE_NO_REBOOT, APPLY_MODE_REBOOT, APPLY_MODE_STAGED or APPLY_MODE_TRY"
        ))),
        Ok(mode) => Ok(mode),
    }
}

fn check_apply(request: &pb::ApplyConfigurationRequest) -> Result<(), Status> {
    let mode = apply_mode(request.mode)?;
    if let Some(timeout) = &request.try_timeout {
        if mode != pb::ApplyMode::Try {
            return Err(Status::invalid_argument(format!(
                "try_timeout is only for APPLY_MODE_TRY; this request's mode is {}",
                mode.as_str_name()
            )));
        }
        if timeout.seconds < 0 || timeout.nanos < 0 || (timeout.seconds == 0 && timeout.nanos == 0)
        {
            return Err(Status::invalid_argument(format!(
                "try_timeout must be positive; it is {}s {}ns",
                timeout.seconds, timeout.nanos
            )));
        }
    }
    Ok(())
}

fn dependency_kind(kind: EdgeKind) -> pb::DependencyKind {
    match kind {
        EdgeKind::StrongInput => pb::DependencyKind::StrongInput,
        EdgeKind::WeakInput => pb::DependencyKind::WeakInput,
        EdgeKind::ExclusiveOutput => pb::DependencyKind::ExclusiveOutput,
        EdgeKind::SharedOutput => pb::DependencyKind::SharedOutput,
    }
}

impl Machine {
    fn dependencies(&self) -> pb::DependenciesResponse {
        // The graph names types without their namespace; type names are unique in the
        // runtime, so the state's kinds give it back.
        let kinds = self.state.kinds();
        let namespace_of = |type_name: &str| {
            kinds
                .iter()
                .find(|(_, t, _)| t == type_name)
                .map(|(n, _, _)| n.clone())
                .unwrap_or_default()
        };
        let controllers = self
            .graph
            .controllers
            .iter()
            .map(|name| {
                let dependencies = self
                    .graph
                    .edges
                    .iter()
                    .filter_map(|edge| {
                        let type_name = match edge.kind {
                            EdgeKind::StrongInput | EdgeKind::WeakInput if edge.to == *name => {
                                &edge.from
                            }
                            EdgeKind::ExclusiveOutput | EdgeKind::SharedOutput
                                if edge.from == *name =>
                            {
                                &edge.to
                            }
                            _ => return None,
                        };
                        Some(pb::ControllerDependency {
                            namespace: namespace_of(type_name),
                            r#type: type_name.clone(),
                            kind: dependency_kind(edge.kind).into(),
                        })
                    })
                    .collect();
                pb::Controller {
                    name: name.clone(),
                    dependencies,
                }
            })
            .collect();
        pb::DependenciesResponse { controllers }
    }
}

#[tonic::async_trait]
impl MachineService for Machine {
    async fn version(
        &self,
        _request: Request<pb::VersionRequest>,
    ) -> Result<Response<pb::VersionResponse>, Status> {
        Ok(Response::new(self.version.response()))
    }

    async fn health(
        &self,
        _request: Request<pb::HealthRequest>,
    ) -> Result<Response<pb::HealthResponse>, Status> {
        self.ops.services.health().await.map(Response::new)
    }

    async fn apply_configuration(
        &self,
        request: Request<pb::ApplyConfigurationRequest>,
    ) -> Result<Response<pb::ApplyConfigurationResponse>, Status> {
        let request = request.into_inner();
        check_apply(&request)?;
        self.ops.config.apply(request).await.map(Response::new)
    }

    async fn confirm_configuration(
        &self,
        request: Request<pb::ConfirmConfigurationRequest>,
    ) -> Result<Response<pb::ConfirmConfigurationResponse>, Status> {
        let request = request.into_inner();
        if request.generation == 0 {
            return Err(Status::invalid_argument(
                "generation is 0: pass the generation the APPLY_MODE_TRY apply answered",
            ));
        }
        self.ops.config.confirm(request).await?;
        Ok(Response::new(pb::ConfirmConfigurationResponse {}))
    }

    type UpgradeStream = Answers<pb::UpgradeProgress>;

    async fn upgrade(
        &self,
        request: Request<pb::UpgradeRequest>,
    ) -> Result<Response<Self::UpgradeStream>, Status> {
        let request = request.into_inner();
        text(
            "release_version",
            &request.release_version,
            MAX_RELEASE_VERSION_BYTES,
        )?;
        if request.release_version.contains(['\n', '\t']) {
            return Err(Status::invalid_argument(
                "release_version contains whitespace; it names one release",
            ));
        }
        let answers = self.ops.upgrade.upgrade(request).await?;
        Ok(Response::new(self.until_closing(answers)))
    }

    async fn rollback(
        &self,
        request: Request<pb::RollbackRequest>,
    ) -> Result<Response<pb::RollbackResponse>, Status> {
        let request = request.into_inner();
        text("reason", &request.reason, MAX_REASON_BYTES)?;
        self.ops.upgrade.rollback(request).await.map(Response::new)
    }

    async fn reboot(
        &self,
        _request: Request<pb::RebootRequest>,
    ) -> Result<Response<pb::RebootResponse>, Status> {
        self.ops.power.reboot().await?;
        Ok(Response::new(pb::RebootResponse {}))
    }

    async fn shutdown(
        &self,
        _request: Request<pb::ShutdownRequest>,
    ) -> Result<Response<pb::ShutdownResponse>, Status> {
        self.ops.power.shutdown().await?;
        Ok(Response::new(pb::ShutdownResponse {}))
    }

    async fn service_list(
        &self,
        _request: Request<pb::ServiceListRequest>,
    ) -> Result<Response<pb::ServiceListResponse>, Status> {
        self.ops.services.list().await.map(Response::new)
    }

    async fn service_start(
        &self,
        request: Request<pb::ServiceStartRequest>,
    ) -> Result<Response<pb::ServiceActionResponse>, Status> {
        let id = service_id(&request.get_ref().id)?;
        self.ops.services.start(id).await.map(action)
    }

    async fn service_stop(
        &self,
        request: Request<pb::ServiceStopRequest>,
    ) -> Result<Response<pb::ServiceActionResponse>, Status> {
        let id = service_id(&request.get_ref().id)?;
        self.ops.services.stop(id).await.map(action)
    }

    async fn service_restart(
        &self,
        request: Request<pb::ServiceRestartRequest>,
    ) -> Result<Response<pb::ServiceActionResponse>, Status> {
        let id = service_id(&request.get_ref().id)?;
        self.ops.services.restart(id).await.map(action)
    }

    type LogsStream = Answers<pb::LogEntry>;

    async fn logs(
        &self,
        request: Request<pb::LogsRequest>,
    ) -> Result<Response<Self::LogsStream>, Status> {
        let request = request.into_inner();
        required("service_id", &request.service_id, MAX_SERVICE_ID_BYTES)?;
        if request.tail_lines > MAX_TAIL_LINES {
            return Err(Status::invalid_argument(format!(
                "tail_lines {} is more than the limit of {MAX_TAIL_LINES}; 0 asks for everything the buffer holds",
                request.tail_lines
            )));
        }
        let permit = if request.follow {
            Some(self.follow_permit("Logs with follow")?)
        } else {
            None
        };
        let answers = self.ops.services.logs(request).await?;
        Ok(Response::new(self.until_closing_holding(answers, permit)))
    }

    type EventsStream = Answers<pb::Event>;

    async fn events(
        &self,
        request: Request<pb::EventsRequest>,
    ) -> Result<Response<Self::EventsStream>, Status> {
        let permit = if request.get_ref().watch {
            Some(self.follow_permit("Events with watch")?)
        } else {
            None
        };
        let answers = super::events::events(&self.events, request.get_ref())?;
        Ok(Response::new(self.until_closing_holding(answers, permit)))
    }

    async fn resource_get(
        &self,
        request: Request<pb::ResourceGetRequest>,
    ) -> Result<Response<pb::ResourceGetResponse>, Status> {
        let reader = Reader::new(&self.state, caller(&request)?);
        reader.get(request.get_ref()).map(Response::new)
    }

    async fn resource_list(
        &self,
        request: Request<pb::ResourceListRequest>,
    ) -> Result<Response<pb::ResourceListResponse>, Status> {
        let reader = Reader::new(&self.state, caller(&request)?);
        reader.list(request.get_ref()).map(Response::new)
    }

    type ResourceWatchStream = Answers<pb::ResourceWatchEvent>;

    async fn resource_watch(
        &self,
        request: Request<pb::ResourceWatchRequest>,
    ) -> Result<Response<Self::ResourceWatchStream>, Status> {
        let reader = Reader::new(&self.state, caller(&request)?);
        let answers = reader.watch(request.get_ref())?;
        let permit = self.follow_permit("ResourceWatch")?;
        Ok(Response::new(
            self.until_closing_holding(answers, Some(permit)),
        ))
    }

    async fn dependencies(
        &self,
        _request: Request<pb::DependenciesRequest>,
    ) -> Result<Response<pb::DependenciesResponse>, Status> {
        Ok(Response::new(self.dependencies()))
    }
}
