//! The operator HTTP JSON API under `/api/v1/…`, authenticated by the operator bearer
//! token. It reads through [`FleetQueries`]/[`FleetStore`] and changes rollouts and pins
//! through the same operator commands as `skerry-server rollout …` ([`crate::admin`]).
//!
//! # Layout
//! - [`token`]: the bearer token file and its constant-time check.
//! - [`json`]: store values as JSON.
//! - [`enrollment`]: join tokens and device revocation.
//! - [`uploads`], [`staged`], [`publish`]: `skerryctl release push` — files streamed
//!   into a staging area, verified against the served root, published atomically.

pub mod enrollment;
pub mod json;
pub mod publish;
pub mod staged;
pub mod token;
pub mod uploads;

use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use serde_json::{json, Value};
use skerry_fleet_store::RolloutAction;
use tonic::body::Body;

use crate::admin::{self, AdminError, NewRollout};
use crate::checkin::Clock;
use crate::fleet_db::FleetDb;
use crate::releases::ReleaseCatalog;
use token::OperatorToken;

/// Where the API lives.
pub const API_PREFIX: &str = "/api/v1/";
/// Prometheus scrapes here (with the operator token as its bearer credential).
pub const METRICS_PATH: &str = "/metrics";
/// The largest request body the API reads.
pub const MAX_API_BODY: usize = 16 * 1024;
/// Devices per page when the request does not say.
pub const DEFAULT_PAGE: usize = 100;
/// Longest id (device, rollout) accepted, as for check-ins.
pub const MAX_ID: usize = 128;

/// The operator API's state.
pub struct OperatorApi {
    db: FleetDb,
    catalog: Arc<ReleaseCatalog>,
    token: OperatorToken,
    clock: Clock,
    repository: PathBuf,
    uploads: staged::Uploads,
    /// The online timestamp key, which signs the timestamp of a pushed release.
    timestamp_key: Option<skerry_tuf::SecretKey>,
}

impl std::fmt::Debug for OperatorApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OperatorApi")
            .field("data", &self.db.dir.root)
            .finish_non_exhaustive()
    }
}

/// A refusal: status and words, answered as `{"error": …}`.
#[derive(Debug)]
pub struct ApiError(StatusCode, String);

fn bad(what: impl Into<String>) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, what.into())
}

impl From<AdminError> for ApiError {
    fn from(e: AdminError) -> Self {
        let status = match &e {
            AdminError::Store(skerry_fleet_store::StoreError::Sql { .. }) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
            AdminError::Store(
                skerry_fleet_store::StoreError::NoSuchRollout { .. }
                | skerry_fleet_store::StoreError::NoSuchDevice { .. },
            ) => StatusCode::NOT_FOUND,
            AdminError::NoSuchRelease { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            AdminError::Waves { .. }
            | AdminError::Threshold { .. }
            | AdminError::Version { .. }
            | AdminError::Window { .. } => StatusCode::BAD_REQUEST,
            _ => StatusCode::CONFLICT,
        };
        ApiError(status, crate::timestamp::chain(&e))
    }
}

impl From<skerry_fleet_store::StoreError> for ApiError {
    fn from(e: skerry_fleet_store::StoreError) -> Self {
        ApiError(
            StatusCode::INTERNAL_SERVER_ERROR,
            crate::timestamp::chain(&e),
        )
    }
}

/// A JSON response.
pub fn json_response(status: StatusCode, value: &Value) -> Response<Body> {
    let mut r = Response::new(Body::new(Full::new(Bytes::from(value.to_string()))));
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    r.headers_mut().insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-store"),
    );
    r
}

/// An id from a path or a body: 1..=128 bytes of `[A-Za-z0-9._-]`, as check-ins require.
pub fn check_id(what: &str, id: &str) -> Result<(), ApiError> {
    let ok = !id.is_empty()
        && id.len() <= MAX_ID
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(bad(format!(
            "{what} {id:?}: give 1 to {MAX_ID} characters of A-Z a-z 0-9 . _ -"
        )))
    }
}

impl OperatorApi {
    /// The API over the fleet database, making the operator token on first start.
    pub fn open(db: &FleetDb, clock: Clock) -> Result<Self, String> {
        let dir = &db.dir;
        let token_path = dir.keys().join(token::TOKEN_FILE);
        let token = OperatorToken::load_or_create(&token_path)
            .map_err(|e| format!("the operator token {}: {e}", token_path.display()))?;
        let timestamp_key = match dir.timestamp_key().exists() {
            true => Some(
                skerry_tuf::SecretKey::load(&dir.timestamp_key()).map_err(|e| {
                    format!(
                        "{}: {}",
                        dir.timestamp_key().display(),
                        crate::timestamp::chain(&e)
                    )
                })?,
            ),
            false => None,
        };
        Ok(Self {
            db: db.clone(),
            catalog: Arc::new(ReleaseCatalog::new(&dir.repository())),
            uploads: staged::Uploads::new(dir.root.join("uploads")),
            repository: dir.repository(),
            timestamp_key,
            token,
            clock,
        })
    }

    /// Whether a path is the API's, the metrics' or the dashboard's.
    pub fn routes(path: &str) -> bool {
        path.starts_with(API_PREFIX)
            || path == METRICS_PATH
            || path == crate::dashboard::DASHBOARD_PREFIX
            || path.starts_with("/dashboard/")
    }

    /// Answers one request (never fails: refusals are JSON errors).
    pub async fn handle(self: Arc<Self>, req: Request<Body>) -> Response<Body> {
        // The page itself holds nothing secret; what it shows comes from the API below.
        if req
            .uri()
            .path()
            .starts_with(crate::dashboard::DASHBOARD_PREFIX)
        {
            return crate::dashboard::asset(req.uri().path());
        }
        let authorization = req
            .headers()
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        if !self.token.admits(authorization) {
            let mut r = json_response(
                StatusCode::UNAUTHORIZED,
                &json!({"error": "missing or wrong operator token (Authorization: Bearer <DIR/keys/operator.token>)"}),
            );
            r.headers_mut().insert(
                http::header::WWW_AUTHENTICATE,
                http::HeaderValue::from_static("Bearer"),
            );
            return r;
        }
        if req.uri().path() == METRICS_PATH {
            let api = Arc::clone(&self);
            return match tokio::task::spawn_blocking(move || api.db.store.rollouts()).await {
                Ok(Ok(rollouts)) => {
                    let mut r = Response::new(Body::new(Full::new(Bytes::from(
                        crate::metrics::render(&rollouts),
                    ))));
                    r.headers_mut().insert(
                        http::header::CONTENT_TYPE,
                        http::HeaderValue::from_static("text/plain; version=0.0.4"),
                    );
                    r
                }
                Ok(Err(e)) => json_response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &json!({"error": crate::timestamp::chain(&e)}),
                ),
                Err(e) => json_response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &json!({"error": e.to_string()}),
                ),
            };
        }
        let (head, body) = req.into_parts();
        let uploads_prefix = format!("{API_PREFIX}{}", uploads::UPLOADS);
        let path = head.uri.path();
        if path == uploads_prefix || path.starts_with(&format!("{uploads_prefix}/")) {
            return match uploads::handle(Arc::clone(&self), head, body).await {
                Ok((status, value)) => json_response(status, &value),
                Err(ApiError(status, words)) => json_response(status, &json!({"error": words})),
            };
        }
        let body = match Limited::new(body, MAX_API_BODY).collect().await {
            Ok(b) => b.to_bytes(),
            Err(_) => {
                return json_response(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    &json!({"error": format!("the request body is over {MAX_API_BODY} bytes (or broke off)")}),
                )
            }
        };
        let api = Arc::clone(&self);
        let answer = tokio::task::spawn_blocking(move || api.route(&head, &body)).await;
        match answer {
            Ok(Ok((status, value))) => json_response(status, &value),
            Ok(Err(ApiError(status, words))) => json_response(status, &json!({"error": words})),
            Err(e) => json_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                &json!({"error": format!("the request's task failed: {e}")}),
            ),
        }
    }

    fn route(
        &self,
        head: &http::request::Parts,
        body: &[u8],
    ) -> Result<(StatusCode, Value), ApiError> {
        let path = head.uri.path().strip_prefix(API_PREFIX).unwrap_or("");
        let parts: Vec<&str> = path.split('/').collect();
        let ok = |v: Value| Ok((StatusCode::OK, v));
        match (&head.method, parts.as_slice()) {
            (&Method::GET, ["releases"]) => ok(
                json!({"releases": self.catalog.releases().iter().map(json::release).collect::<Vec<_>>()}),
            ),
            (&Method::GET, ["overview"]) => ok(json::overview(&self.db.store.overview()?)),
            (&Method::GET, ["rollouts"]) => ok(
                json!({"rollouts": self.db.store.rollouts()?.iter().map(json::rollout).collect::<Vec<_>>()}),
            ),
            (&Method::POST, ["rollouts"]) => {
                let new = new_rollout(&parse_body(body)?)?;
                let r = admin::create_rollout(&self.db, &new, (self.clock)())?;
                Ok((StatusCode::CREATED, json!({"id": r.id})))
            }
            (&Method::POST, ["rollouts", id, action]) => {
                check_id("rollout", id)?;
                let action = match *action {
                    "pause" => RolloutAction::Pause {
                        note: optional_str(&parse_body_or_empty(body)?, "note", 1024)?
                            .unwrap_or_default(),
                    },
                    "resume" => RolloutAction::Resume,
                    "abort" => RolloutAction::Abort,
                    other => {
                        return Err(ApiError(
                            StatusCode::NOT_FOUND,
                            format!("no rollout action {other:?} (pause, resume, abort)"),
                        ))
                    }
                };
                admin::act(&self.db, id, &action, (self.clock)())?;
                ok(json!({"id": id, "done": action_name(&action)}))
            }
            (&Method::GET, ["devices"]) => {
                let query = Query::parse(head.uri.query().unwrap_or(""))?;
                if let Some(after) = &query.after {
                    check_id("after", after)?;
                }
                let page = self
                    .db
                    .store
                    .device_page(query.after.as_deref(), query.limit)?;
                ok(json::device_page(&page))
            }
            (&Method::GET, ["devices", id]) => {
                check_id("device", id)?;
                let Some(device) = self.db.store.device(id)? else {
                    return Err(ApiError(
                        StatusCode::NOT_FOUND,
                        format!("no device {id:?} has checked in"),
                    ));
                };
                let timeline = self.db.store.timeline(id)?;
                ok(json::device(&device, &timeline))
            }
            (&Method::PUT, ["devices", id, "pin"]) => {
                check_id("device", id)?;
                let b = parse_body(body)?;
                let version = optional_str(&b, "version", 64)?
                    .ok_or_else(|| bad("body: \"version\" is required"))?;
                let force = b.get("force").and_then(Value::as_bool).unwrap_or(false);
                admin::pin(&self.db, id, Some((&version, force)))?;
                ok(json!({"device": id, "pin": version, "force": force}))
            }
            (&Method::DELETE, ["devices", id, "pin"]) => {
                check_id("device", id)?;
                admin::pin(&self.db, id, None)?;
                ok(json!({"device": id, "pin": null}))
            }
            (&Method::POST, ["devices", id, "revoke"]) => {
                enrollment::revoke_device(&self.db, id, (self.clock)())
            }
            (&Method::GET, ["tokens"]) => ok(enrollment::list(&self.db, (self.clock)())?),
            (&Method::POST, ["tokens"]) => Ok((
                StatusCode::CREATED,
                enrollment::create(&self.db, &parse_body_or_empty(body)?, (self.clock)())?,
            )),
            (&Method::POST, ["tokens", id, "revoke"]) => {
                enrollment::revoke_token(&self.db, id, (self.clock)())
            }
            (&Method::GET, ["pins"]) => {
                let pins = self.pins()?;
                ok(json!({"pins": pins}))
            }
            _ => Err(ApiError(
                StatusCode::NOT_FOUND,
                format!("no route {} {}", head.method, head.uri.path()),
            )),
        }
    }

    /// Every pinned device (walks the device pages; bounded by the fleet).
    fn pins(&self) -> Result<Vec<Value>, ApiError> {
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = self
                .db
                .store
                .device_page(after.as_deref(), skerry_fleet_store::DEVICE_PAGE_LIMIT)?;
            out.extend(page.devices.iter().filter_map(|d| {
                d.pin
                    .as_ref()
                    .map(|p| json!({"device": d.id, "version": p}))
            }));
            match page.next_after {
                Some(next) => after = Some(next),
                None => return Ok(out),
            }
        }
    }
}

fn action_name(a: &RolloutAction) -> &'static str {
    match a {
        RolloutAction::Pause { .. } => "paused",
        RolloutAction::Resume => "resumed",
        RolloutAction::Abort => "aborted",
    }
}

fn parse_body(body: &[u8]) -> Result<Value, ApiError> {
    let v: Value =
        serde_json::from_slice(body).map_err(|e| bad(format!("the body is not JSON: {e}")))?;
    if !v.is_object() {
        return Err(bad("the body must be a JSON object"));
    }
    Ok(v)
}

fn parse_body_or_empty(body: &[u8]) -> Result<Value, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        Ok(json!({}))
    } else {
        parse_body(body)
    }
}

fn optional_str(body: &Value, field: &str, max: usize) -> Result<Option<String>, ApiError> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.len() <= max => Ok(Some(s.clone())),
        Some(Value::String(_)) => Err(bad(format!("body: {field:?} is longer than {max} bytes"))),
        Some(_) => Err(bad(format!("body: {field:?} must be a string"))),
    }
}

fn new_rollout(b: &Value) -> Result<NewRollout, ApiError> {
    let need = |f: &str| {
        optional_str(b, f, MAX_ID)?.ok_or_else(|| bad(format!("body: {f:?} is required")))
    };
    let id = need("id")?;
    check_id("rollout", &id)?;
    let board = need("board")?;
    check_id("board", &board)?;
    let channel = optional_str(b, "channel", MAX_ID)?.unwrap_or_else(|| "stable".into());
    check_id("channel", &channel)?;
    let min_sample = match b.get("min_sample") {
        None | Some(Value::Null) => 1,
        Some(v) => v
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| bad("body: \"min_sample\" must be a whole number"))?,
    };
    Ok(NewRollout {
        id,
        board,
        version: need("version")?,
        channel,
        waves: optional_str(b, "waves", 512)?.unwrap_or_else(|| "0:100%".into()),
        max_bad: optional_str(b, "max_bad", 16)?.unwrap_or_else(|| "20%".into()),
        min_sample,
        force: b.get("force").and_then(Value::as_bool).unwrap_or(false),
    })
}

/// `?after=ID&limit=N`.
struct Query {
    after: Option<String>,
    limit: usize,
}

impl Query {
    fn parse(q: &str) -> Result<Self, ApiError> {
        let mut out = Query {
            after: None,
            limit: DEFAULT_PAGE,
        };
        for pair in q.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match k {
                "after" => out.after = Some(v.to_string()),
                "limit" => {
                    out.limit = v
                        .parse::<usize>()
                        .ok()
                        .filter(|n| (1..=skerry_fleet_store::DEVICE_PAGE_LIMIT).contains(n))
                        .ok_or_else(|| {
                            bad(format!(
                                "limit {v:?}: give 1 to {}",
                                skerry_fleet_store::DEVICE_PAGE_LIMIT
                            ))
                        })?
                }
                other => {
                    return Err(bad(format!(
                        "unknown query parameter {other:?} (after, limit)"
                    )))
                }
            }
        }
        Ok(out)
    }
}
