//! The machine API as skerryd serves it: `skerry.machine.v1.MachineService` over the
//! edge in `skerry-api` (mutual TLS, the role gate). Each method translates the request
//! into a read of the runtime's state or event log, or into a call on the subsystems'
//! [`skerryd_core::Ops`], and the answer back; the layer holds no state of its own.
//!
//! Layout:
//! - `machine`: [`Machine`], the service, and the checks on each request;
//! - `resources`: ResourceGet/List/Watch through the runtime's `ClientView`;
//! - `events`: Events, resumable from an id;
//! - `limits`: the bounds on what a client sends;
//! - `tls`: the node's TLS material from a `skerryctl gen secrets` directory.
//!
//! The daemon calls, in order: [`load_server_tls`] on the secrets directory,
//! [`Machine::new`] with the ops, state, event log, controller graph and version, and
//! [`serve`] on a bound listener.

mod events;
mod limits;
mod machine;
mod resources;
mod tls;

use std::future::Future;

pub use limits::{
    MAX_FOLLOW_STREAMS, MAX_NAMESPACE_BYTES, MAX_REASON_BYTES, MAX_RELEASE_VERSION_BYTES,
    MAX_RESOURCE_ID_BYTES, MAX_SERVICE_ID_BYTES, MAX_TAIL_LINES, MAX_TYPE_BYTES,
};
pub use machine::Machine;
pub use skerry_api::{ServeError, ServerTls, VersionInfo};
pub use tls::{load_server_tls, TlsLoadError, CA_CERT, MAX_PEM_BYTES, NODE_CERT, NODE_KEY};

/// The runtime's role for the role the gate read from a client certificate.
pub fn runtime_role(role: skerry_api::Role) -> skerry_runtime::Role {
    match role {
        skerry_api::Role::Admin => skerry_runtime::Role::Admin,
        skerry_api::Role::Operator => skerry_runtime::Role::Operator,
        skerry_api::Role::Reader => skerry_runtime::Role::Reader,
    }
}

/// Serves `machine` on `listener` over mutual TLS behind the role gate until
/// `shutdown` completes; then ends every open stream (watches would otherwise keep the
/// server waiting forever) and lets unary calls in flight finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    tls: &ServerTls,
    machine: Machine,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    let closer = machine.clone();
    let shutdown = async move {
        shutdown.await;
        closer.close_streams();
    };
    skerry_api::serve(listener, tls, machine, shutdown).await
}
