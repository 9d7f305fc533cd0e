//! The listeners and the edge service: the plaintext port (HTTP/1.1 and HTTP/2) and,
//! with `--tls-listen`, the device-facing TLS port ([`crate::tls`]), both served by the
//! same edge. Requests with a gRPC content type go to the fleet API (and, over TLS
//! only, to enrollment); `/device/v1/` to the device routes; `/repository/…` to the
//! repository host; `/healthz` answers `ok`; anything else is 404.

use std::convert::Infallible;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::{Request, Response};
use skerry_fleet_store::{EnrollmentStore, FleetStore, PgStore, SqliteStore, StoreError};
use skerry_proto::fleet::v1::enrollment_service_server::EnrollmentServiceServer;
use skerry_proto::fleet::v1::fleet_service_server::FleetServiceServer;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::body::Body;

use crate::checkin::{Clock, FleetApi};
use crate::data::{DataDir, DataError};
use crate::device_gate::{Arrival, GatedFleet, PlaintextPolicy};
use crate::device_http::DeviceHttp;
use crate::enroll::{EnrollApi, MAX_ENROLL_BYTES};
use crate::fleet_db::{FleetDb, ServerStore};
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
    #[error("preparing the PKI")]
    Pki(#[from] crate::pki::PkiError),
    #[error("setting up TLS")]
    Tls(#[from] crate::tls::TlsSetupError),
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
    /// Names (DNS or IP) the server certificate carries besides `localhost`,
    /// `127.0.0.1` and `::1` (`--tls-name`).
    pub tls_names: Vec<String>,
    /// `--allow-plaintext-devices`: check-ins on the plaintext port are taken without
    /// authentication even from enrolled devices (tests and the demo only).
    pub allow_plaintext_devices: bool,
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
            .field("tls_names", &self.tls_names)
            .field("allow_plaintext_devices", &self.allow_plaintext_devices)
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
            tls_names: Vec::new(),
            allow_plaintext_devices: false,
        }
    }
}

/// The gRPC path prefix of enrollment, served over TLS only.
const ENROLL_PATH: &str = "/skerry.fleet.v1.EnrollmentService/";

struct Edge<S: FleetStore + EnrollmentStore> {
    grpc: FleetServiceServer<GatedFleet<S>>,
    /// Some on the TLS listener only: a token must not travel in the clear.
    enroll: Option<EnrollmentServiceServer<EnrollApi<S>>>,
    device: Arc<DeviceHttp<S>>,
    arrival: Arrival,
    repo: Arc<RepoHost>,
    /// The operator API, dashboard and metrics.
    operator: Arc<crate::api::OperatorApi>,
    /// hawkBit DDI.
    ddi: Arc<crate::ddi::DdiApi>,
}

impl<S: FleetStore + EnrollmentStore> Clone for Edge<S> {
    fn clone(&self) -> Self {
        Self {
            grpc: self.grpc.clone(),
            enroll: self.enroll.clone(),
            device: Arc::clone(&self.device),
            arrival: self.arrival,
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

impl<S: FleetStore + EnrollmentStore> tower_service::Service<Request<Body>> for Edge<S> {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut req: Request<Body>) -> Self::Future {
        req.extensions_mut().insert(self.arrival);
        if is_grpc(&req) && req.uri().path().starts_with(ENROLL_PATH) {
            let Some(mut enroll) = self.enroll.clone() else {
                let refusal = tonic::Status::failed_precondition(
                    "enrollment is served over TLS only (the server's --tls-listen port)",
                );
                return Box::pin(async move { Ok(refusal.into_http()) });
            };
            return Box::pin(async move { tower_service::Service::call(&mut enroll, req).await });
        }
        if DeviceHttp::<S>::routes(req.uri().path()) {
            let device = Arc::clone(&self.device);
            let arrival = self.arrival;
            return Box::pin(async move { Ok(device.handle(req, arrival).await) });
        }
        if is_grpc(&req) {
            let mut grpc = self.grpc.clone();
            return Box::pin(async move { tower_service::Service::call(&mut grpc, req).await });
        }
        if crate::ddi::DdiApi::routes(req.uri().path()) {
            let ddi = Arc::clone(&self.ddi);
            return Box::pin(async move { Ok(ddi.handle(req).await) });
        }
        if crate::api::OperatorApi::routes(req.uri().path()) {
            let operator = Arc::clone(&self.operator);
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

/// Prepares the data directory (creating it and the database on first start), then
/// serves on the plaintext `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    config: ServerConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    serve_with_tls(listener, None, config, shutdown).await
}

/// As [`serve`], with the device-facing TLS listener `tls` too (`--tls-listen`).
pub async fn serve_with_tls(
    listener: TcpListener,
    tls: Option<TcpListener>,
    config: ServerConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    let listeners = Listeners {
        plaintext: listener,
        tls,
    };
    let dir = DataDir::prepare(&config.data)?;
    match config.database.clone() {
        Some(url) => {
            // The PostgreSQL client blocks: open it off the async workers.
            let store = tokio::task::spawn_blocking(move || PgStore::open(&url))
                .await
                .map_err(|e| ServeError::Opening(e.to_string()))??;
            serve_store(Arc::new(store), dir, listeners, config, shutdown).await
        }
        None => {
            let store = Arc::new(SqliteStore::open(&dir.database())?);
            serve_store(store, dir, listeners, config, shutdown).await
        }
    }
}

struct Listeners {
    plaintext: TcpListener,
    tls: Option<TcpListener>,
}

/// The names the server certificate always carries, before `--tls-name`.
pub const DEFAULT_TLS_NAMES: &[&str] = &["localhost", "127.0.0.1", "::1"];

async fn serve_store<S: ServerStore>(
    store: Arc<S>,
    dir: DataDir,
    listeners: Listeners,
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
        tracing::warn!(
            key = %dir.timestamp_key().display(),
            "no online timestamp key; timestamp.json is not re-signed (put the key there)"
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
    let db = FleetDb {
        dir: dir.clone(),
        store: Arc::clone(&store) as Arc<dyn ServerStore>,
    };
    let catalog = Arc::new(ReleaseCatalog::new(&dir.repository()));
    let api = FleetApi::new(
        Arc::clone(&store),
        catalog,
        config.clock.clone(),
        config.poll_interval,
    );
    let mut names: Vec<String> = DEFAULT_TLS_NAMES.iter().map(|n| n.to_string()).collect();
    names.extend(config.tls_names.iter().cloned());
    let pki = Arc::new(crate::pki::Pki::load_or_create(
        &dir.pki(),
        &names,
        std::time::SystemTime::now(),
    )?);
    let policy = PlaintextPolicy {
        tls_listener: listeners.tls.is_some(),
        allow_devices: config.allow_plaintext_devices,
    };
    let gated = GatedFleet::new(api, Arc::clone(&store), policy);
    let edge = Edge {
        grpc: FleetServiceServer::new(gated).max_decoding_message_size(MAX_REQUEST_BYTES),
        enroll: None,
        device: Arc::new(DeviceHttp::new(
            Arc::clone(&store),
            pki.server_ca_der(),
            config.clock.clone(),
        )),
        arrival: Arrival::Plaintext,
        repo: Arc::new(RepoHost::new(&dir.repository())),
        operator: Arc::new(
            crate::api::OperatorApi::open(&db, config.clock.clone())
                .map_err(ServeError::Opening)?,
        ),
        ddi: Arc::new(
            crate::ddi::DdiApi::open(&db, config.clock.clone(), config.poll_interval)
                .map_err(ServeError::Opening)?,
        ),
    };
    let tls_edge = Edge {
        enroll: Some(
            EnrollmentServiceServer::new(EnrollApi::new(
                Arc::clone(&store),
                Arc::clone(&pki),
                config.clock.clone(),
            ))
            .max_decoding_message_size(MAX_ENROLL_BYTES),
        ),
        arrival: Arrival::Tls,
        ..edge.clone()
    };
    let tls_incoming = match listeners.tls {
        Some(l) => Some(crate::tls::incoming(l, crate::tls::server_config(&pki)?)),
        None => None,
    };
    // Either server ending (an error, or the shutdown signal) stops the other.
    let (down_tx, down_rx) = tokio::sync::watch::channel(false);
    let down = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|d| *d).await;
    };
    let builder = || {
        tonic::transport::Server::builder()
            .accept_http1(true)
            .http2_keepalive_interval(Some(Duration::from_secs(60)))
    };
    let plaintext = async {
        let r = builder()
            .serve_with_incoming_shutdown(
                edge,
                TcpListenerStream::new(listeners.plaintext),
                down(down_rx.clone()),
            )
            .await
            .map_err(ServeError::Transport);
        down_tx.send_replace(true);
        r
    };
    let tls = async {
        let Some(incoming) = tls_incoming else {
            return Ok(());
        };
        let r = builder()
            .serve_with_incoming_shutdown(tls_edge, incoming, down(down_rx.clone()))
            .await
            .map_err(ServeError::Transport);
        down_tx.send_replace(true);
        r
    };
    let servers = async {
        let (a, b) = tokio::join!(plaintext, tls);
        a.and(b)
    };
    tokio::pin!(servers);
    let result = tokio::select! {
        r = &mut servers => r,
        () = shutdown => {
            down_tx.send_replace(true);
            servers.await
        }
    };
    let _ = stop_tx.send(true);
    if let Some(task) = resigner {
        let _ = task.await;
    }
    result
}
