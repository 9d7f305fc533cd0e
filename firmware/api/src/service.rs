//! The machine API's methods. Version and Health answer from what the daemon hands
//! over; every other method answers `UNIMPLEMENTED`, naming itself, until skerryd
//! wires its controllers in (config, services, upgrade flow, logs, events, state).

use std::pin::Pin;
use std::sync::Arc;

use skerry_proto::machine::v1 as pb;
use skerry_proto::machine::v1::machine_service_server::MachineService;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use crate::health::{CheckStatus, HealthSource};

/// What Version reports; fixed for the life of the daemon.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VersionInfo {
    /// The daemon's own version.
    pub daemon_version: String,
    /// The release booted now, empty when unknown.
    pub release_version: String,
    /// The board definition's name.
    pub board: String,
    /// The slot booted now, empty when unknown.
    pub booted_slot: String,
}

/// What the API's methods read from; the daemon provides it.
#[derive(Clone)]
pub struct Services {
    /// Answered by Version.
    pub version: VersionInfo,
    /// Read by Health.
    pub health: Arc<dyn HealthSource>,
}

impl std::fmt::Debug for Services {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Services")
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

/// The `MachineService` implementation behind the role gate.
#[derive(Debug, Clone)]
pub struct MachineApi {
    services: Services,
}

impl MachineApi {
    /// The API over `services`.
    pub fn new(services: Services) -> Self {
        MachineApi { services }
    }
}

type ServerStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// The answer of a method skerryd has not wired in yet.
fn awaits_wiring(method: &str) -> Status {
    Status::unimplemented(format!(
        "skerry.machine.v1.MachineService/{method} is not served yet: it awaits skerryd's wiring of its controllers"
    ))
}

fn health_status(status: CheckStatus) -> pb::HealthStatus {
    match status {
        CheckStatus::Unknown => pb::HealthStatus::Unknown,
        CheckStatus::Healthy => pb::HealthStatus::Healthy,
        CheckStatus::Unhealthy => pb::HealthStatus::Unhealthy,
    }
}

#[tonic::async_trait]
impl MachineService for MachineApi {
    async fn version(
        &self,
        _request: Request<pb::VersionRequest>,
    ) -> Result<Response<pb::VersionResponse>, Status> {
        let v = &self.services.version;
        Ok(Response::new(pb::VersionResponse {
            daemon_version: v.daemon_version.clone(),
            api_version: skerry_proto::MACHINE_API_PACKAGE.to_owned(),
            release_version: v.release_version.clone(),
            board: v.board.clone(),
            booted_slot: v.booted_slot.clone(),
        }))
    }

    async fn health(
        &self,
        _request: Request<pb::HealthRequest>,
    ) -> Result<Response<pb::HealthResponse>, Status> {
        let report = self.services.health.health();
        let checks = report
            .checks
            .iter()
            .map(|c| pb::HealthCheck {
                name: c.name.clone(),
                critical: c.critical,
                status: health_status(c.status).into(),
                message: c.message.clone(),
                last_run: c.last_run.map(prost_types::Timestamp::from),
                consecutive_failures: c.consecutive_failures,
            })
            .collect();
        Ok(Response::new(pb::HealthResponse {
            overall: health_status(report.overall()).into(),
            checks,
        }))
    }

    async fn apply_configuration(
        &self,
        _request: Request<pb::ApplyConfigurationRequest>,
    ) -> Result<Response<pb::ApplyConfigurationResponse>, Status> {
        Err(awaits_wiring("ApplyConfiguration"))
    }

    async fn confirm_configuration(
        &self,
        _request: Request<pb::ConfirmConfigurationRequest>,
    ) -> Result<Response<pb::ConfirmConfigurationResponse>, Status> {
        Err(awaits_wiring("ConfirmConfiguration"))
    }

    type UpgradeStream = ServerStream<pb::UpgradeProgress>;

    async fn upgrade(
        &self,
        _request: Request<pb::UpgradeRequest>,
    ) -> Result<Response<Self::UpgradeStream>, Status> {
        Err(awaits_wiring("Upgrade"))
    }

    async fn rollback(
        &self,
        _request: Request<pb::RollbackRequest>,
    ) -> Result<Response<pb::RollbackResponse>, Status> {
        Err(awaits_wiring("Rollback"))
    }

    async fn reboot(
        &self,
        _request: Request<pb::RebootRequest>,
    ) -> Result<Response<pb::RebootResponse>, Status> {
        Err(awaits_wiring("Reboot"))
    }

    async fn shutdown(
        &self,
        _request: Request<pb::ShutdownRequest>,
    ) -> Result<Response<pb::ShutdownResponse>, Status> {
        Err(awaits_wiring("Shutdown"))
    }

    async fn service_list(
        &self,
        _request: Request<pb::ServiceListRequest>,
    ) -> Result<Response<pb::ServiceListResponse>, Status> {
        Err(awaits_wiring("ServiceList"))
    }

    async fn service_start(
        &self,
        _request: Request<pb::ServiceStartRequest>,
    ) -> Result<Response<pb::ServiceActionResponse>, Status> {
        Err(awaits_wiring("ServiceStart"))
    }

    async fn service_stop(
        &self,
        _request: Request<pb::ServiceStopRequest>,
    ) -> Result<Response<pb::ServiceActionResponse>, Status> {
        Err(awaits_wiring("ServiceStop"))
    }

    async fn service_restart(
        &self,
        _request: Request<pb::ServiceRestartRequest>,
    ) -> Result<Response<pb::ServiceActionResponse>, Status> {
        Err(awaits_wiring("ServiceRestart"))
    }

    type LogsStream = ServerStream<pb::LogEntry>;

    async fn logs(
        &self,
        _request: Request<pb::LogsRequest>,
    ) -> Result<Response<Self::LogsStream>, Status> {
        Err(awaits_wiring("Logs"))
    }

    type EventsStream = ServerStream<pb::Event>;

    async fn events(
        &self,
        _request: Request<pb::EventsRequest>,
    ) -> Result<Response<Self::EventsStream>, Status> {
        Err(awaits_wiring("Events"))
    }

    async fn resource_get(
        &self,
        _request: Request<pb::ResourceGetRequest>,
    ) -> Result<Response<pb::ResourceGetResponse>, Status> {
        Err(awaits_wiring("ResourceGet"))
    }

    async fn resource_list(
        &self,
        _request: Request<pb::ResourceListRequest>,
    ) -> Result<Response<pb::ResourceListResponse>, Status> {
        Err(awaits_wiring("ResourceList"))
    }

    type ResourceWatchStream = ServerStream<pb::ResourceWatchEvent>;

    async fn resource_watch(
        &self,
        _request: Request<pb::ResourceWatchRequest>,
    ) -> Result<Response<Self::ResourceWatchStream>, Status> {
        Err(awaits_wiring("ResourceWatch"))
    }

    async fn dependencies(
        &self,
        _request: Request<pb::DependenciesRequest>,
    ) -> Result<Response<pb::DependenciesResponse>, Status> {
        Err(awaits_wiring("Dependencies"))
    }
}
