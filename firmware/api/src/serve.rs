//! Serving the machine API on a listener until a shutdown future completes, and
//! connecting to it.

use std::future::Future;

use skerry_proto::machine::v1::machine_service_client::MachineServiceClient;
use skerry_proto::machine::v1::machine_service_server::{MachineService, MachineServiceServer};
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::{Channel, Endpoint, Server};

use crate::gate::RoleGate;
use crate::tls::{ClientTls, ServerTls};

/// The port skerryd serves the machine API on unless told otherwise.
pub const DEFAULT_PORT: u16 = 50000;

/// The largest request message the server decodes (a machine configuration is the
/// largest thing a client sends).
pub const MAX_REQUEST_BYTES: usize = 1024 * 1024;

/// Concurrent streams (calls) one connection may have open.
pub const MAX_STREAMS_PER_CONNECTION: u32 = 64;

/// Why serving or connecting failed.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The TLS material was refused, or the transport failed.
    #[error("machine API transport failed")]
    Transport {
        /// tonic's error.
        #[source]
        source: tonic::transport::Error,
    },
    /// The endpoint address is not a URI.
    #[error("machine API endpoint {endpoint:?} is not a valid https:// address")]
    BadEndpoint {
        /// What was given.
        endpoint: String,
        /// Why it is not valid.
        #[source]
        source: tonic::transport::Error,
    },
    /// The connection could not be made (refused, TLS failed, timed out).
    #[error("could not connect to the machine API at {endpoint}")]
    Connect {
        /// Where.
        endpoint: String,
        /// tonic's error.
        #[source]
        source: tonic::transport::Error,
    },
}

/// Serves `machine` (skerryd's implementation of the machine API) on `listener` over
/// mutual TLS behind the role gate until `shutdown` completes, then lets calls in
/// flight finish. Each call's [`Role`](crate::Role) is in its request's extensions.
pub async fn serve<S: MachineService>(
    listener: TcpListener,
    tls: &ServerTls,
    machine: S,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    let api = MachineServiceServer::new(machine).max_decoding_message_size(MAX_REQUEST_BYTES);
    Server::builder()
        .tls_config(tls.config())
        .map_err(|source| ServeError::Transport { source })?
        .max_concurrent_streams(MAX_STREAMS_PER_CONNECTION)
        // One service, no router: the gate sees every path and refuses those its table
        // does not list, so an unknown service is UNIMPLEMENTED there too.
        .serve_with_incoming_shutdown(
            RoleGate::new(api),
            TcpListenerStream::new(listener),
            shutdown,
        )
        .await
        .map_err(|source| ServeError::Transport { source })
}

/// Connects to the machine API at `endpoint` (`https://HOST:PORT`).
pub async fn connect(
    endpoint: &str,
    tls: &ClientTls,
) -> Result<MachineServiceClient<Channel>, ServeError> {
    let channel = Endpoint::from_shared(endpoint.to_owned())
        .map_err(|source| ServeError::BadEndpoint {
            endpoint: endpoint.to_owned(),
            source,
        })?
        .tls_config(tls.config())
        .map_err(|source| ServeError::BadEndpoint {
            endpoint: endpoint.to_owned(),
            source,
        })?
        .connect()
        .await
        .map_err(|source| ServeError::Connect {
            endpoint: endpoint.to_owned(),
            source,
        })?;
    Ok(MachineServiceClient::new(channel))
}
