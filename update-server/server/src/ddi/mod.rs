//! The device-facing half of hawkBit's Direct Device Integration API, for devices
//! running unmodified SWUpdate (suricatta): `GET /{tenant}/controller/v1/{id}` (polling
//! and links), `deploymentBase/{action}` (the release's `.swu` with its hashes), the
//! artifact, `…/feedback` (mapped onto the same upgrade steps as a gRPC check-in, so
//! rollout counts and automatic pauses work the same), `configData`, `cancelAction`.
//! A DDI device is an ordinary device record; the rollout decision is the same pure
//! function. The `.swu` of release V for board B is `DIR/swu/B/V.swu`.

mod actions;
pub mod admin;
pub mod auth;
mod config_data;
mod deployment;
pub mod feedback;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use skerry_fleet_store::{ActionState, StoreError};
use tonic::body::Body;

use crate::checkin::Clock;
use crate::fleet_db::{FleetDb, ServerStore};
use crate::releases::ReleaseCatalog;
use crate::timestamp::chain;

/// Largest feedback or configData body read.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Longest attribute key or value kept from configData.
pub const MAX_ATTRIBUTE_BYTES: usize = 256;

/// The DDI service over the fleet database.
pub struct DdiApi {
    store: Arc<dyn ServerStore>,
    catalog: Arc<ReleaseCatalog>,
    swu_dir: PathBuf,
    gateway: Option<String>,
    clock: Clock,
    poll_interval: Duration,
}

impl std::fmt::Debug for DdiApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DdiApi")
            .field("swu_dir", &self.swu_dir)
            .field("gateway", &self.gateway.is_some())
            .finish_non_exhaustive()
    }
}

fn text(status: StatusCode, body: impl Into<String>) -> Response<Body> {
    let mut r = Response::new(Body::new(http_body_util::Full::new(Bytes::from(
        body.into(),
    ))));
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain"),
    );
    r
}

fn json_response(v: &Value) -> Response<Body> {
    let mut r = Response::new(Body::new(http_body_util::Full::new(Bytes::from(
        v.to_string(),
    ))));
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    r
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// Where `/{tenant}/controller/v1/{id}/…` leads.
#[derive(Debug, PartialEq, Eq)]
enum Route<'a> {
    Poll,
    Deployment(u64),
    Feedback(u64),
    Artifact(u64, &'a str),
    ConfigData,
    Cancel(u64),
    CancelFeedback(u64),
}

fn route<'a>(rest: &[&'a str]) -> Option<Route<'a>> {
    let id = |s: &str| s.parse::<u64>().ok();
    Some(match rest {
        [] => Route::Poll,
        ["deploymentBase", a] => Route::Deployment(id(a)?),
        ["deploymentBase", a, "feedback"] => Route::Feedback(id(a)?),
        ["softwaremodules", a, "artifacts", f] => Route::Artifact(id(a)?, f),
        ["configData"] => Route::ConfigData,
        ["cancelAction", a] => Route::Cancel(id(a)?),
        ["cancelAction", a, "feedback"] => Route::CancelFeedback(id(a)?),
        _ => return None,
    })
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl DdiApi {
    /// DDI over the fleet database; reads the gateway token if there is one.
    pub fn open(db: &FleetDb, clock: Clock, poll_interval: Duration) -> Result<Self, String> {
        let dir = &db.dir;
        let gateway_path = dir.keys().join("ddi-gateway.token");
        let gateway = match std::fs::read_to_string(&gateway_path) {
            Ok(t) if !t.trim().is_empty() => Some(t.trim().to_string()),
            Ok(_) => None,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(format!("reading {}: {e}", gateway_path.display())),
        };
        Ok(Self {
            store: Arc::clone(&db.store),
            catalog: Arc::new(ReleaseCatalog::new(&dir.repository())),
            swu_dir: dir.repository().with_file_name("swu"),
            gateway,
            clock,
            poll_interval,
        })
    }

    /// Whether `path` is a DDI controller path (`/{tenant}/controller/v1/…`).
    pub fn routes(path: &str) -> bool {
        let mut parts = path.split('/').skip(1);
        let _tenant = parts.next();
        parts.next() == Some("controller") && parts.next() == Some("v1")
    }

    pub async fn handle(self: Arc<Self>, req: Request<Body>) -> Response<Body> {
        let (head, body) = req.into_parts();
        let body = match http_body_util::Limited::new(body, MAX_BODY_BYTES)
            .collect()
            .await
        {
            Ok(b) => b.to_bytes(),
            Err(_) => {
                return text(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("the body is over {MAX_BODY_BYTES} bytes"),
                )
            }
        };
        let api = Arc::clone(&self);
        match tokio::task::spawn_blocking(move || api.answer(&head, &body)).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                tracing::error!(error = %chain(&e), "DDI request failed");
                text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the server could not store this; retry later",
                )
            }
            Err(_) => text(StatusCode::INTERNAL_SERVER_ERROR, "the DDI task failed"),
        }
    }

    fn answer(
        &self,
        head: &http::request::Parts,
        body: &[u8],
    ) -> Result<Response<Body>, StoreError> {
        let path = head.uri.path();
        let parts: Vec<&str> = path.split('/').skip(1).collect();
        if parts.len() < 4 || parts.len() > 8 || !valid_name(parts[0]) || !valid_name(parts[3]) {
            return Ok(text(
                StatusCode::BAD_REQUEST,
                "expected /{tenant}/controller/v1/{controllerId}[/…] of [A-Za-z0-9._-]",
            ));
        }
        let controller = parts[3];
        let header = head
            .headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let target =
            match auth::authenticate(&*self.store, self.gateway.as_deref(), header, controller)? {
                Ok(t) => t,
                Err(refusal) => return Ok(text(StatusCode::UNAUTHORIZED, refusal.to_string())),
            };
        let Some(route) = route(&parts[4..]) else {
            return Ok(text(StatusCode::NOT_FOUND, "no such DDI resource"));
        };
        let base = format!(
            "http://{}/{}/controller/v1/{controller}",
            head.headers
                .get(http::header::HOST)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("127.0.0.1"),
            parts[0]
        );
        match (&head.method, route) {
            (&Method::GET, Route::Poll) => self.poll(&target, &base),
            (&Method::GET, Route::Deployment(id)) => self.deployment(&target, id, &base),
            (&Method::GET, Route::Artifact(id, name)) => self.download(&target, id, name, head),
            (&Method::POST, Route::Feedback(id)) => self.feedback(&target, id, body, false),
            (&Method::POST, Route::CancelFeedback(id)) => self.feedback(&target, id, body, true),
            (&Method::GET, Route::Cancel(id)) => {
                Ok(match self.store.ddi_action(&target.device, id)? {
                    Some(a) if a.state == ActionState::Canceling => json_response(
                        &json!({"id": id.to_string(), "cancelAction": {"stopId": id.to_string()}}),
                    ),
                    _ => text(
                        StatusCode::NOT_FOUND,
                        format!("no cancel of action {id} is pending"),
                    ),
                })
            }
            (&Method::PUT, Route::ConfigData) => self.config_data(&target, body),
            _ => Ok(text(
                StatusCode::METHOD_NOT_ALLOWED,
                "method not allowed here",
            )),
        }
    }
}
