//! Test support (feature `test-support`): a throwaway machine PKI ([`TestCa`]), the
//! driver of the grpcio client tests ([`grpcio`]), a loopback server task
//! ([`Serving`]), and a
//! machine for tests of the edge and of clients: Version and Health answer what it was
//! given, every other method answers `UNIMPLEMENTED` naming itself. The real service is
//! skerryd's.

pub mod grpcio;
mod pki;
mod serving;

pub use pki::{Pem, PkiError, TestCa, MAX_ORGANIZATIONS};
pub use serving::{sample_version, Serving, Shutdown};

/// `e` and each of its sources, joined by `": "`: what a test matches a message in.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

use std::pin::Pin;

use skerry_proto::machine::v1 as pb;
use skerry_proto::machine::v1::machine_service_server::MachineService;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use crate::roles::Role;
use crate::version::VersionInfo;

/// A `MachineService` with fixed answers.
#[derive(Debug, Clone, Default)]
pub struct FixedMachine {
    /// What Version answers.
    pub version: VersionInfo,
    /// What Health answers.
    pub health: pb::HealthResponse,
}

impl FixedMachine {
    /// A machine answering Version with `version` and Health with no checks.
    pub fn new(version: VersionInfo) -> Self {
        FixedMachine {
            version,
            health: pb::HealthResponse {
                overall: pb::HealthStatus::Healthy.into(),
                checks: Vec::new(),
            },
        }
    }
}

type Answers<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// The answer of a method this machine does not have; it names the method and the
/// caller's role the gate handed over, so tests see that the call got past the gate.
fn not_here<T>(method: &str, request: &Request<T>) -> Status {
    let role = request
        .extensions()
        .get::<Role>()
        .map_or("no role".to_owned(), Role::to_string);
    Status::unimplemented(format!(
        "skerry.machine.v1.MachineService/{method} is not served by this test machine (caller: {role})"
    ))
}

#[tonic::async_trait]
impl MachineService for FixedMachine {
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
        Ok(Response::new(self.health.clone()))
    }

    type UpgradeStream = Answers<pb::UpgradeProgress>;
    type LogsStream = Answers<pb::LogEntry>;
    type EventsStream = Answers<pb::Event>;
    type ResourceWatchStream = Answers<pb::ResourceWatchEvent>;

    async fn apply_configuration(
        &self,
        request: Request<pb::ApplyConfigurationRequest>,
    ) -> Result<Response<pb::ApplyConfigurationResponse>, Status> {
        Err(not_here("ApplyConfiguration", &request))
    }

    async fn confirm_configuration(
        &self,
        request: Request<pb::ConfirmConfigurationRequest>,
    ) -> Result<Response<pb::ConfirmConfigurationResponse>, Status> {
        Err(not_here("ConfirmConfiguration", &request))
    }

    async fn upgrade(
        &self,
        request: Request<pb::UpgradeRequest>,
    ) -> Result<Response<Self::UpgradeStream>, Status> {
        Err(not_here("Upgrade", &request))
    }

    async fn rollback(
        &self,
        request: Request<pb::RollbackRequest>,
    ) -> Result<Response<pb::RollbackResponse>, Status> {
        Err(not_here("Rollback", &request))
    }

    async fn reboot(
        &self,
        request: Request<pb::RebootRequest>,
    ) -> Result<Response<pb::RebootResponse>, Status> {
        Err(not_here("Reboot", &request))
    }

    async fn shutdown(
        &self,
        request: Request<pb::ShutdownRequest>,
    ) -> Result<Response<pb::ShutdownResponse>, Status> {
        Err(not_here("Shutdown", &request))
    }

    async fn service_list(
        &self,
        request: Request<pb::ServiceListRequest>,
    ) -> Result<Response<pb::ServiceListResponse>, Status> {
        Err(not_here("ServiceList", &request))
    }

    async fn service_start(
        &self,
        request: Request<pb::ServiceStartRequest>,
    ) -> Result<Response<pb::ServiceActionResponse>, Status> {
        Err(not_here("ServiceStart", &request))
    }

    async fn service_stop(
        &self,
        request: Request<pb::ServiceStopRequest>,
    ) -> Result<Response<pb::ServiceActionResponse>, Status> {
        Err(not_here("ServiceStop", &request))
    }

    async fn service_restart(
        &self,
        request: Request<pb::ServiceRestartRequest>,
    ) -> Result<Response<pb::ServiceActionResponse>, Status> {
        Err(not_here("ServiceRestart", &request))
    }

    async fn logs(
        &self,
        request: Request<pb::LogsRequest>,
    ) -> Result<Response<Self::LogsStream>, Status> {
        Err(not_here("Logs", &request))
    }

    async fn events(
        &self,
        request: Request<pb::EventsRequest>,
    ) -> Result<Response<Self::EventsStream>, Status> {
        Err(not_here("Events", &request))
    }

    async fn resource_get(
        &self,
        request: Request<pb::ResourceGetRequest>,
    ) -> Result<Response<pb::ResourceGetResponse>, Status> {
        Err(not_here("ResourceGet", &request))
    }

    async fn resource_list(
        &self,
        request: Request<pb::ResourceListRequest>,
    ) -> Result<Response<pb::ResourceListResponse>, Status> {
        Err(not_here("ResourceList", &request))
    }

    async fn resource_watch(
        &self,
        request: Request<pb::ResourceWatchRequest>,
    ) -> Result<Response<Self::ResourceWatchStream>, Status> {
        Err(not_here("ResourceWatch", &request))
    }

    async fn dependencies(
        &self,
        request: Request<pb::DependenciesRequest>,
    ) -> Result<Response<pb::DependenciesResponse>, Status> {
        Err(not_here("Dependencies", &request))
    }
}
