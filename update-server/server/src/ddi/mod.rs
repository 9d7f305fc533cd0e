//! The device-facing half of hawkBit's Direct Device Integration API, for devices
//! running unmodified SWUpdate (suricatta): `GET /{tenant}/controller/v1/{id}` (polling
//! and links), `deploymentBase/{action}` (the release's `.swu` with its hashes), the
//! artifact, `…/feedback` (mapped onto the same upgrade steps as a gRPC check-in, so
//! rollout counts and automatic pauses work the same), `configData`, `cancelAction`.
//! A DDI device is an ordinary device record; the rollout decision is the same pure
//! function. The `.swu` of release V for board B is `DIR/swu/B/V.swu`.

pub mod admin;
pub mod auth;
pub mod feedback;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use md5::Md5;
use serde_json::{json, Value};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use skerry_fleet_store::{
    ActionState, Admission, CheckIn, DdiAction, DdiTarget, HealthReport, HealthState, StoreError,
    UpgradeReport, DDI_ATTRIBUTE_LIMIT,
};
use skerry_rollout::Decision;
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

fn hms(d: Duration) -> String {
    let s = d.as_secs().min(99 * 3600);
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
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

/// The `.swu` of a release, and what DDI says about it.
struct Artifact {
    path: PathBuf,
    filename: String,
    size: u64,
    sha1: String,
    md5: String,
    sha256: String,
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn artifact(dir: &Path, board: &str, version: &str) -> std::io::Result<Artifact> {
    let filename = format!("{version}.swu");
    let path = dir.join(board).join(&filename);
    let data = std::fs::read(&path)?;
    Ok(Artifact {
        size: data.len() as u64,
        sha1: hex(&Sha1::digest(&data)),
        md5: hex(&Md5::digest(&data)),
        sha256: hex(&Sha256::digest(&data)),
        path,
        filename,
    })
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

    /// Records a poll as a check-in and decides, as for a gRPC device.
    fn check_in(
        &self,
        target: &DdiTarget,
        reports: Vec<UpgradeReport>,
    ) -> Result<Option<(String, semver::Version)>, StoreError> {
        let now = (self.clock)();
        let check_in = CheckIn {
            device: target.device.clone(),
            board: target.board.clone(),
            version: target.version.clone(),
            channel: target.channel.clone(),
            labels: BTreeMap::new(),
            slots: vec![],
            health: HealthReport {
                state: HealthState::Healthy,
                failing: vec![],
            },
            reports,
            // Its target or gateway token was checked already.
            admission: Admission::Open,
        };
        let record = self.store.check_in(&check_in, now)?;
        let decision =
            crate::checkin::decide_after(&*self.store, &self.catalog, &check_in, &record, now)?;
        Ok(match decision {
            Decision::Offer(offer) => offer.rollout_id.map(|id| (id, offer.release.version)),
            Decision::Hold(_) => None,
        })
    }

    fn poll(&self, target: &DdiTarget, base: &str) -> Result<Response<Body>, StoreError> {
        let offer = self.check_in(target, vec![])?;
        let mut links = serde_json::Map::new();
        let pending = self.store.ddi_pending_action(&target.device)?;
        let aborted = |a: &DdiAction| -> Result<bool, StoreError> {
            Ok(self.store.rollouts()?.iter().any(|r| {
                r.rollout.id == a.rollout_id
                    && r.rollout.state == skerry_rollout::RolloutState::Aborted
            }))
        };
        match pending {
            Some(a) if a.state == ActionState::Canceling || aborted(&a)? => {
                self.store
                    .set_ddi_action_state(&target.device, a.id, ActionState::Canceling)?;
                links.insert(
                    "cancelAction".into(),
                    json!({"href": format!("{base}/cancelAction/{}", a.id)}),
                );
            }
            _ => {
                if let Some((rollout, version)) = offer {
                    if artifact(&self.swu_dir, &target.board, &version.to_string()).is_ok() {
                        let now = (self.clock)();
                        let a =
                            self.store
                                .ddi_open_action(&target.device, &rollout, &version, now)?;
                        links.insert(
                            "deploymentBase".into(),
                            json!({"href": format!("{base}/deploymentBase/{}", a.id)}),
                        );
                    } else {
                        tracing::warn!(
                            device = %target.device,
                            board = %target.board,
                            %version,
                            swu_dir = %self.swu_dir.display(),
                            "no .swu of the release for the board; the DDI target is not offered it"
                        );
                    }
                }
            }
        }
        if self.store.ddi_attributes(&target.device)?.is_none() {
            links.insert(
                "configData".into(),
                json!({"href": format!("{base}/configData")}),
            );
        }
        Ok(json_response(&json!({
            "config": {"polling": {"sleep": hms(self.poll_interval)}},
            "_links": links,
        })))
    }

    fn deployment(
        &self,
        target: &DdiTarget,
        id: u64,
        base: &str,
    ) -> Result<Response<Body>, StoreError> {
        let Some(a) = self.store.ddi_action(&target.device, id)? else {
            return Ok(text(
                StatusCode::NOT_FOUND,
                format!("no action {id} for this target"),
            ));
        };
        let Ok(art) = artifact(&self.swu_dir, &target.board, &a.version.to_string()) else {
            return Ok(text(
                StatusCode::NOT_FOUND,
                format!("the .swu of {} is gone", a.version),
            ));
        };
        let href = format!("{base}/softwaremodules/{id}/artifacts/{}", art.filename);
        Ok(json_response(&json!({
            "id": id.to_string(),
            "deployment": {
                "download": "forced",
                "update": "forced",
                "chunks": [{
                    "part": "os",
                    "name": target.board,
                    "version": a.version.to_string(),
                    "artifacts": [{
                        "filename": art.filename,
                        "hashes": {"sha1": art.sha1, "md5": art.md5, "sha256": art.sha256},
                        "size": art.size,
                        "_links": {"download-http": {"href": href}, "download": {"href": href}},
                    }],
                }],
            },
        })))
    }

    fn download(
        &self,
        target: &DdiTarget,
        id: u64,
        name: &str,
        head: &http::request::Parts,
    ) -> Result<Response<Body>, StoreError> {
        let Some(a) = self.store.ddi_action(&target.device, id)? else {
            return Ok(text(
                StatusCode::NOT_FOUND,
                format!("no action {id} for this target"),
            ));
        };
        let Ok(art) = artifact(&self.swu_dir, &target.board, &a.version.to_string()) else {
            return Ok(text(StatusCode::NOT_FOUND, "no such artifact"));
        };
        if art.filename != name {
            return Ok(text(StatusCode::NOT_FOUND, "no such artifact"));
        }
        let data = match std::fs::read(&art.path) {
            Ok(d) => d,
            Err(_) => return Ok(text(StatusCode::NOT_FOUND, "no such artifact")),
        };
        let len = data.len() as u64;
        let range = head
            .headers
            .get(http::header::RANGE)
            .and_then(|v| v.to_str().ok())
            .and_then(|r| parse_range(r, len));
        let (status, start, end) = match range {
            Some(Ok((s, e))) => (StatusCode::PARTIAL_CONTENT, s, e),
            Some(Err(())) => {
                let mut r = text(
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    "the range starts past the end",
                );
                r.headers_mut().insert(
                    http::header::CONTENT_RANGE,
                    http::HeaderValue::from_str(&format!("bytes */{len}")).expect("ascii"),
                );
                return Ok(r);
            }
            None => (StatusCode::OK, 0, len),
        };
        let mut r = Response::new(Body::new(http_body_util::Full::new(
            Bytes::copy_from_slice(&data[start as usize..end as usize]),
        )));
        *r.status_mut() = status;
        let h = r.headers_mut();
        h.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/octet-stream"),
        );
        h.insert(
            http::header::ACCEPT_RANGES,
            http::HeaderValue::from_static("bytes"),
        );
        if status == StatusCode::PARTIAL_CONTENT {
            h.insert(
                http::header::CONTENT_RANGE,
                http::HeaderValue::from_str(&format!("bytes {start}-{}/{len}", end - 1))
                    .expect("ascii"),
            );
        }
        Ok(r)
    }

    fn feedback(
        &self,
        target: &DdiTarget,
        id: u64,
        body: &[u8],
        cancel: bool,
    ) -> Result<Response<Body>, StoreError> {
        let Some(a) = self.store.ddi_action(&target.device, id)? else {
            return Ok(text(
                StatusCode::NOT_FOUND,
                format!("no action {id} for this target"),
            ));
        };
        let progress = match feedback::parse(body) {
            Ok(p) if cancel => p.for_cancel(),
            Ok(p) => p,
            Err(e) => return Ok(text(StatusCode::BAD_REQUEST, format!("feedback: {e}"))),
        };
        if !matches!(a.state, ActionState::Open | ActionState::Canceling) {
            return Ok(text(
                StatusCode::GONE,
                format!("action {id} is already {}", a.state.name()),
            ));
        }
        let now = (self.clock)();
        let acked = self
            .store
            .device(&target.device)?
            .map_or(0, |d| d.acknowledged);
        let reports = progress
            .steps()
            .into_iter()
            .enumerate()
            .map(|(i, (step, reason))| UpgradeReport {
                sequence: acked + 1 + i as u64,
                target: a.version.clone(),
                step,
                reason,
                at: now,
            })
            .collect();
        let mut next = target.clone();
        let state = match &progress {
            feedback::Progress::Succeeded => {
                next.version = a.version.clone();
                Some(ActionState::Succeeded)
            }
            feedback::Progress::Failed { .. } => Some(ActionState::Failed),
            feedback::Progress::Canceled if a.state == ActionState::Canceling => {
                Some(ActionState::Canceled)
            }
            _ => None,
        };
        // A success is checked in at the new version, so the device record moves on too.
        self.check_in(&next, reports)?;
        if let Some(state) = state {
            self.store.set_ddi_action_state(&target.device, id, state)?;
        }
        if next.version != target.version {
            self.store.update_ddi_target(&next)?;
        }
        Ok(text(StatusCode::OK, ""))
    }

    fn config_data(&self, target: &DdiTarget, body: &[u8]) -> Result<Response<Body>, StoreError> {
        let v: Value = match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(e) => {
                return Ok(text(
                    StatusCode::BAD_REQUEST,
                    format!("configData: not JSON: {e}"),
                ))
            }
        };
        let Some(data) = v.get("data").and_then(Value::as_object) else {
            return Ok(text(StatusCode::BAD_REQUEST, "configData: no data object"));
        };
        if data.len() > DDI_ATTRIBUTE_LIMIT {
            return Ok(text(
                StatusCode::BAD_REQUEST,
                format!("configData: more than {DDI_ATTRIBUTE_LIMIT} attributes"),
            ));
        }
        let mut attrs = if v.get("mode").and_then(Value::as_str) == Some("replace") {
            BTreeMap::new()
        } else {
            self.store
                .ddi_attributes(&target.device)?
                .unwrap_or_default()
        };
        for (k, val) in data {
            let Some(val) = val.as_str() else {
                return Ok(text(
                    StatusCode::BAD_REQUEST,
                    format!("configData: data.{k}: not a string"),
                ));
            };
            if k.is_empty() || k.len() > MAX_ATTRIBUTE_BYTES || val.len() > MAX_ATTRIBUTE_BYTES {
                return Ok(text(
                    StatusCode::BAD_REQUEST,
                    format!("configData: a key or value over {MAX_ATTRIBUTE_BYTES} bytes"),
                ));
            }
            attrs.insert(k.clone(), val.to_string());
        }
        if attrs.len() > DDI_ATTRIBUTE_LIMIT {
            return Ok(text(
                StatusCode::BAD_REQUEST,
                format!("configData: more than {DDI_ATTRIBUTE_LIMIT} attributes"),
            ));
        }
        let mut next = target.clone();
        if let Some(b) = attrs.get("board").filter(|b| valid_name(b)) {
            next.board = b.clone();
        }
        if let Some(c) = attrs.get("channel").filter(|c| valid_name(c)) {
            next.channel = c.clone();
        }
        self.store.set_ddi_attributes(&target.device, &attrs)?;
        if next != *target {
            self.store.update_ddi_target(&next)?;
        }
        Ok(text(StatusCode::OK, ""))
    }
}

/// One `bytes=` range: `Some(Ok((start, end_exclusive)))`, `Some(Err(()))` when it starts
/// past the end, `None` for none or one we ignore (several, malformed).
fn parse_range(header: &str, len: u64) -> Option<Result<(u64, u64), ()>> {
    let spec = header.strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let (start, end) = match (a.trim(), b.trim()) {
        ("", n) => {
            let n: u64 = n.parse().ok()?;
            (len.saturating_sub(n), len)
        }
        (s, "") => (s.parse().ok()?, len),
        (s, e) => {
            let (s, e): (u64, u64) = (s.parse().ok()?, e.parse().ok()?);
            if e < s {
                return None;
            }
            (s, (e + 1).min(len))
        }
    };
    if start >= len {
        return Some(Err(()));
    }
    Some(Ok((start, end)))
}
