//! The listener and the edge service: one port, HTTP/1.1 and HTTP/2. Requests with a
//! gRPC content type go to the fleet API; `/repository/…` to the repository host;
//! `/healthz` answers `ok`; anything else is 404.

use std::convert::Infallible;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::{Request, Response};
use skerry_fleet_store::{FleetStore, LeaseStore, PgStore, SqliteStore, StoreError};
use skerry_proto::fleet::v1::fleet_service_server::FleetServiceServer;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::body::Body;

use crate::checkin::{Clock, FleetApi};
use crate::data::{DataDir, DataError};
use crate::releases::ReleaseCatalog;
use crate::repo_http::{RepoHost, PREFIX};
use crate::timestamp::{self, ResignDuty, ResignError, ResignPolicy, TimestampSigner};
use crate::validate::MAX_REQUEST_BYTES;

/// Why the server could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("preparing the data directory")]
    Data(#[from] DataError),
    #[error("opening the database")]
    Store(#[from] StoreError),
    #[error("loading the online timestamp key")]
    Key(#[from] ResignError),
    #[error("opening the database: {0}")]
    Opening(String),
    #[error("serving")]
    Transport(#[source] tonic::transport::Error),
}

/// What the server needs besides its listener.
#[derive(Clone)]
pub struct ServerConfig {
    pub data: PathBuf,
    /// What devices are told about their next check-in.
    pub poll_interval: Duration,
    /// How often the timestamp is looked at.
    pub resign_every: Duration,
    pub resign: ResignPolicy,
    pub clock: Clock,
    /// A PostgreSQL connection string; `None` keeps the embedded SQLite in `data`.
    pub database: Option<String>,
    /// This instance's name as the holder of the timestamp lease (unique per process).
    pub instance: String,
    /// Where each timestamp version this instance re-signed is also sent.
    pub resigned: Option<tokio::sync::mpsc::UnboundedSender<u64>>,
}

/// `HOST-PID-NANOS`: unique among instances sharing a database.
pub fn instance_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "host".into());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("{host}-{}-{nanos:09}", std::process::id())
}

impl std::fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerConfig")
            .field("data", &self.data)
            .field("poll_interval", &self.poll_interval)
            .field("resign_every", &self.resign_every)
            .field("postgres", &self.database.is_some())
            .field("instance", &self.instance)
            .finish_non_exhaustive()
    }
}

impl ServerConfig {
    /// Defaults: devices poll every 5 minutes, the timestamp is checked every minute.
    pub fn new(data: PathBuf) -> Self {
        Self {
            data,
            poll_interval: Duration::from_secs(300),
            resign_every: Duration::from_secs(60),
            resign: ResignPolicy::default(),
            clock: Arc::new(|| skerry_rollout::UnixTime::from_system(std::time::SystemTime::now())),
            database: None,
            instance: instance_name(),
            resigned: None,
        }
    }
}

struct Edge<S: FleetStore> {
    grpc: FleetServiceServer<FleetApi<S>>,
    repo: Arc<RepoHost>,
    /// None with `--database`: the operator API, dashboard and metrics read the
    /// embedded database only, so on PostgreSQL they answer 503 instead of showing it.
    operator: Option<Arc<crate::api::OperatorApi>>,
    /// hawkBit DDI (SQLite store only, until PostgreSQL implements `DdiStore`).
    ddi: Option<Arc<crate::ddi::DdiApi>>,
}

impl<S: FleetStore> Clone for Edge<S> {
    fn clone(&self) -> Self {
        Self {
            grpc: self.grpc.clone(),
            repo: Arc::clone(&self.repo),
            operator: self.operator.clone(),
            ddi: self.ddi.clone(),
        }
    }
}

fn is_grpc<B>(req: &Request<B>) -> bool {
    req.headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/grpc"))
}

impl<S: FleetStore> tower_service::Service<Request<Body>> for Edge<S> {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        if is_grpc(&req) {
            let mut grpc = self.grpc.clone();
            return Box::pin(async move { tower_service::Service::call(&mut grpc, req).await });
        }
        if let Some(ddi) = self
            .ddi
            .as_ref()
            .filter(|_| crate::ddi::DdiApi::routes(req.uri().path()))
        {
            let ddi = Arc::clone(ddi);
            return Box::pin(async move { Ok(ddi.handle(req).await) });
        }
        let path = req.uri().path();
        if crate::api::OperatorApi::routes(path) || crate::ddi::DdiApi::routes(path) {
            let Some(operator) = self
                .operator
                .clone()
                .filter(|_| !crate::ddi::DdiApi::routes(path))
            else {
                return Box::pin(async { Ok(not_on_postgres()) });
            };
            return Box::pin(async move { Ok(operator.handle(req).await) });
        }
        let repo = Arc::clone(&self.repo);
        // Only the head is needed (and a body is not Sync, so it may not be held across
        // an await by reference).
        let req = Request::from_parts(req.into_parts().0, ());
        Box::pin(async move {
            if req.uri().path() == "/healthz" {
                return Ok(Response::new(Body::new(http_body_util::Full::new(
                    bytes::Bytes::from_static(b"ok\n"),
                ))));
            }
            if req.uri().path().starts_with(PREFIX) {
                return Ok(repo.handle(&req).await);
            }
            let mut r = Response::new(Body::empty());
            *r.status_mut() = http::StatusCode::NOT_FOUND;
            Ok(r)
        })
    }
}

/// What the operator API, dashboard, metrics and DDI answer on PostgreSQL: they read
/// the embedded database only, and showing an empty one would mislead.
fn not_on_postgres() -> Response<Body> {
    let mut r = Response::new(Body::new(http_body_util::Full::new(bytes::Bytes::from_static(
        b"not served with --database yet: the operator API, dashboard, metrics and hawkBit DDI run on the embedded database only\n",
    ))));
    *r.status_mut() = http::StatusCode::SERVICE_UNAVAILABLE;
    r
}

/// Prepares the data directory (creating it and the database on first start), then
/// serves on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    config: ServerConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    let dir = DataDir::prepare(&config.data)?;
    match config.database.clone() {
        Some(url) => {
            // The PostgreSQL client blocks: open it off the async workers.
            let store = tokio::task::spawn_blocking(move || PgStore::open(&url))
                .await
                .map_err(|e| ServeError::Opening(e.to_string()))??;
            serve_store(Arc::new(store), dir, listener, config, shutdown).await
        }
        None => {
            let store = Arc::new(SqliteStore::open(&dir.database())?);
            serve_store(store, dir, listener, config, shutdown).await
        }
    }
}

async fn serve_store<S: FleetStore + LeaseStore>(
    store: Arc<S>,
    dir: DataDir,
    listener: TcpListener,
    config: ServerConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let signer = if dir.timestamp_key().exists() {
        Some(TimestampSigner::load(
            &dir.repository(),
            &dir.timestamp_key(),
            config.resign,
        )?)
    } else {
        eprintln!(
            "skerry-server: no {}; timestamp.json is not re-signed (put the online timestamp key there)",
            dir.timestamp_key().display()
        );
        None
    };
    let resigner = signer.map(|signer| {
        let duty = ResignDuty {
            signer,
            leases: Arc::clone(&store),
            holder: config.instance.clone(),
            every: config.resign_every,
            resigned: config.resigned.clone(),
        };
        tokio::spawn(timestamp::run(duty, stop_rx))
    });
    let catalog = Arc::new(ReleaseCatalog::new(&dir.repository()));
    let api = FleetApi::new(store, catalog, config.clock.clone(), config.poll_interval);
    let edge = Edge {
        grpc: FleetServiceServer::new(api).max_decoding_message_size(MAX_REQUEST_BYTES),
        repo: Arc::new(RepoHost::new(&dir.repository())),
        operator: match config.database {
            Some(_) => None,
            None => Some(Arc::new(
                crate::api::OperatorApi::open(&dir, config.data.clone(), config.clock.clone())
                    .map_err(ServeError::Opening)?,
            )),
        },
        ddi: match config.database {
            Some(_) => None,
            None => Some(Arc::new(
                crate::ddi::DdiApi::open(&dir, config.clock.clone(), config.poll_interval)
                    .map_err(ServeError::Opening)?,
            )),
        },
    };
    let result = tonic::transport::Server::builder()
        .accept_http1(true)
        .http2_keepalive_interval(Some(Duration::from_secs(60)))
        .serve_with_incoming_shutdown(edge, TcpListenerStream::new(listener), shutdown)
        .await
        .map_err(ServeError::Transport);
    let _ = stop_tx.send(true);
    if let Some(task) = resigner {
        let _ = task.await;
    }
    result
}
