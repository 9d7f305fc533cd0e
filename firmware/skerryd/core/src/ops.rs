//! What the API asks of the subsystems. The API layer holds no state: each method either
//! reads the runtime's state and the event log, or hands the request to one of these,
//! which the subsystem implements by writing its resources and waiting on them.
//!
//! Requests and answers are the wire types and errors are gRPC statuses, named so that
//! the client learns what was wrong (INVALID_ARGUMENT with every config problem,
//! FAILED_PRECONDITION when the machine is in probation, NOT_FOUND for an unknown
//! service…).

use std::pin::Pin;
use std::sync::Arc;

use skerry_api::pb;
use tokio_stream::Stream;
use tonic::Status;

/// A stream of answers.
pub type Answers<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// The config subsystem.
#[tonic::async_trait]
pub trait ConfigOps: Send + Sync + 'static {
    /// ApplyConfiguration.
    async fn apply(
        &self,
        request: pb::ApplyConfigurationRequest,
    ) -> Result<pb::ApplyConfigurationResponse, Status>;
    /// ConfirmConfiguration.
    async fn confirm(&self, request: pb::ConfirmConfigurationRequest) -> Result<(), Status>;
}

/// The upgrade flow.
#[tonic::async_trait]
pub trait UpgradeOps: Send + Sync + 'static {
    /// Upgrade: progress until the trial is ready (the reboot follows).
    async fn upgrade(
        &self,
        request: pb::UpgradeRequest,
    ) -> Result<Answers<pb::UpgradeProgress>, Status>;
    /// Rollback.
    async fn rollback(&self, request: pb::RollbackRequest) -> Result<pb::RollbackResponse, Status>;
}

/// The service supervisor and the health checks.
#[tonic::async_trait]
pub trait ServiceOps: Send + Sync + 'static {
    /// ServiceList.
    async fn list(&self) -> Result<pb::ServiceListResponse, Status>;
    /// ServiceStart.
    async fn start(&self, id: &str) -> Result<pb::Service, Status>;
    /// ServiceStop.
    async fn stop(&self, id: &str) -> Result<pb::Service, Status>;
    /// ServiceRestart.
    async fn restart(&self, id: &str) -> Result<pb::Service, Status>;
    /// Logs.
    async fn logs(&self, request: pb::LogsRequest) -> Result<Answers<pb::LogEntry>, Status>;
    /// Health: every check's last result.
    async fn health(&self) -> Result<pb::HealthResponse, Status>;
}

/// Reboot and shutdown.
#[tonic::async_trait]
pub trait PowerOps: Send + Sync + 'static {
    /// Reboot.
    async fn reboot(&self) -> Result<(), Status>;
    /// Shutdown.
    async fn shutdown(&self) -> Result<(), Status>;
}

/// Everything the API hands requests to.
#[derive(Clone)]
pub struct Ops {
    /// ApplyConfiguration, ConfirmConfiguration.
    pub config: Arc<dyn ConfigOps>,
    /// Upgrade, Rollback.
    pub upgrade: Arc<dyn UpgradeOps>,
    /// Services, Logs, Health.
    pub services: Arc<dyn ServiceOps>,
    /// Reboot, Shutdown.
    pub power: Arc<dyn PowerOps>,
}

impl std::fmt::Debug for Ops {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ops").finish_non_exhaustive()
    }
}
