//! The device-facing HTTP routes of `docs/fleet-enrollment.md` §1 and §4:
//! `GET /device/v1/ca.pem` (the server CA, to anyone, so a device holding only a join
//! URL can check it against the URL's `ca=sha256:…`), and `POST /device/v1/logs` /
//! `POST /device/v1/events`, a device's console lines and events, kept per device and
//! bounded by the store. Logs and events are taken over TLS only (a token must not
//! travel in the clear), authenticated by the device's client certificate or, for a
//! device that never enrolled, by its join token and `Skerry-Device-Id`.

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use skerry_fleet_store::{EnrollmentStore, LogKind, LogRefusal, LogSource};
use tonic::body::Body;
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};

use crate::checkin::Clock;
use crate::device_gate::{certified_device, Arrival, CertRefusal};
use crate::join_token::JoinToken;
use crate::timestamp::chain;

/// Where these routes live.
pub const PREFIX: &str = "/device/v1/";
/// The largest body taken.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// The most lines in one request.
pub const MAX_LINES: usize = 512;
/// A console line longer than this is cut to it.
pub const MAX_LOG_LINE: usize = 2 * 1024;
/// The longest event line.
pub const MAX_EVENT_LINE: usize = 4 * 1024;
/// The header naming the device when a join token authenticates.
pub const DEVICE_ID_HEADER: &str = "skerry-device-id";

/// What a log request authenticates with.
enum Credential {
    /// The leaf of the client certificate (DER), already verified by rustls.
    Certificate(Vec<u8>),
    Token(JoinToken),
}

/// The device routes over an enrollment store.
pub struct DeviceHttp<S: EnrollmentStore> {
    store: Arc<S>,
    server_ca_pem: String,
    clock: Clock,
}

impl<S: EnrollmentStore> std::fmt::Debug for DeviceHttp<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceHttp").finish_non_exhaustive()
    }
}

fn text(status: StatusCode, body: impl Into<String>) -> Response<Body> {
    let mut r = Response::new(Body::new(Full::new(Bytes::from(body.into()))));
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// PEM of one certificate.
pub fn certificate_pem(der: &[u8]) -> String {
    const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut b64 = String::with_capacity(der.len().div_ceil(3) * 4);
    for chunk in der.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                b64.push(B64[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                b64.push('=');
            }
        }
    }
    let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in b64.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).unwrap_or_default());
        pem.push('\n');
    }
    pem.push_str("-----END CERTIFICATE-----\n");
    pem
}

/// Console lines of a body: `\n`-separated, invalid UTF-8 replaced, a trailing partial
/// line kept, each cut to [`MAX_LOG_LINE`] bytes (on a character boundary).
pub fn console_lines(body: &[u8]) -> Vec<String> {
    let body = body.strip_suffix(b"\n").unwrap_or(body);
    if body.is_empty() {
        return Vec::new();
    }
    body.split(|b| *b == b'\n')
        .map(|raw| {
            let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
            let mut line = String::from_utf8_lossy(raw).into_owned();
            if line.len() > MAX_LOG_LINE {
                let mut cut = MAX_LOG_LINE;
                while !line.is_char_boundary(cut) {
                    cut -= 1;
                }
                line.truncate(cut);
            }
            line
        })
        .collect()
}

/// Event lines of a body: each a JSON object of at most [`MAX_EVENT_LINE`] bytes; the
/// first bad one refuses the lot, named by its number (from 1).
pub fn event_lines(body: &[u8]) -> Result<Vec<String>, String> {
    let body = body.strip_suffix(b"\n").unwrap_or(body);
    if body.is_empty() {
        return Ok(Vec::new());
    }
    body.split(|b| *b == b'\n')
        .enumerate()
        .map(|(i, raw)| {
            let n = i + 1;
            let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
            if raw.len() > MAX_EVENT_LINE {
                return Err(format!(
                    "line {n}: {} bytes, over the limit of {MAX_EVENT_LINE}",
                    raw.len()
                ));
            }
            match serde_json::from_slice::<serde_json::Value>(raw) {
                Ok(v) if v.is_object() => Ok(v.to_string()),
                Ok(_) => Err(format!("line {n}: not a JSON object")),
                Err(e) => Err(format!("line {n}: not JSON ({e})")),
            }
        })
        .collect()
}

/// The join token of a request: `Authorization: Bearer TOKEN`, else `?token=`.
fn token_of(headers: &HeaderMap, query: Option<&str>) -> Option<String> {
    if let Some(v) = headers.get(http::header::AUTHORIZATION) {
        return v
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(|t| t.trim().to_string());
    }
    query?
        .split('&')
        .find_map(|kv| kv.strip_prefix("token="))
        .map(str::to_string)
}

impl<S: EnrollmentStore> DeviceHttp<S> {
    pub fn new(store: Arc<S>, server_ca_der: &[u8], clock: Clock) -> Self {
        Self {
            store,
            server_ca_pem: certificate_pem(server_ca_der),
            clock,
        }
    }

    pub fn routes(path: &str) -> bool {
        path.starts_with(PREFIX)
    }

    pub async fn handle(&self, req: Request<Body>, arrival: Arrival) -> Response<Body> {
        let kind = match req.uri().path() {
            "/device/v1/ca.pem" if req.method() == Method::GET || req.method() == Method::HEAD => {
                let mut r = text(StatusCode::OK, self.server_ca_pem.clone());
                r.headers_mut().insert(
                    http::header::CONTENT_TYPE,
                    http::HeaderValue::from_static("application/x-pem-file"),
                );
                return r;
            }
            "/device/v1/ca.pem" => return text(StatusCode::METHOD_NOT_ALLOWED, "GET only\n"),
            crate::join_url::LOGS_PATH => LogKind::Console,
            crate::join_url::EVENTS_PATH => LogKind::Events,
            _ => return text(StatusCode::NOT_FOUND, "no such device route\n"),
        };
        if req.method() != Method::POST {
            return text(StatusCode::METHOD_NOT_ALLOWED, "POST only\n");
        }
        if arrival != Arrival::Tls {
            return text(
                StatusCode::FORBIDDEN,
                "device logs and events are taken over TLS only (the server's --tls-listen port)\n",
            );
        }
        match self.append(req, kind).await {
            Ok(()) => {
                let mut r = Response::new(Body::empty());
                *r.status_mut() = StatusCode::NO_CONTENT;
                r
            }
            Err((status, why)) => text(status, format!("{why}\n")),
        }
    }

    async fn append(&self, req: Request<Body>, kind: LogKind) -> Result<(), (StatusCode, String)> {
        let (parts, body) = req.into_parts();
        // The body is read (bounded) before any refusal: an HTTP/2 answer sent while the
        // client is still uploading resets its stream, and the client would see a
        // framing error instead of the status that says what was wrong.
        let bytes = match Limited::new(body, MAX_BODY_BYTES).collect().await {
            Ok(b) => b.to_bytes(),
            Err(_) => {
                return Err((
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("body over {MAX_BODY_BYTES} bytes (or cut short)"),
                ))
            }
        };
        let leaf = parts
            .extensions
            .get::<TlsConnectInfo<TcpConnectInfo>>()
            .and_then(|i| i.peer_certs())
            .and_then(|c| c.first().map(|c| c.as_ref().to_vec()));
        let claimed = match parts.headers.get(DEVICE_ID_HEADER) {
            Some(v) => Some(v.to_str().map(str::to_string).map_err(|_| {
                (
                    StatusCode::BAD_REQUEST,
                    "Skerry-Device-Id: not text".to_string(),
                )
            })?),
            None => None,
        };
        let credential = match leaf {
            Some(leaf) => Credential::Certificate(leaf),
            None => {
                let text = token_of(&parts.headers, parts.uri.query()).ok_or((
                    StatusCode::UNAUTHORIZED,
                    "no credentials: send the client certificate, or the join token as Authorization: Bearer TOKEN with Skerry-Device-Id".to_string(),
                ))?;
                Credential::Token(
                    JoinToken::parse(&text)
                        .map_err(|e| (StatusCode::UNAUTHORIZED, format!("token: {e}")))?,
                )
            }
        };
        let lines = match kind {
            LogKind::Console => console_lines(&bytes),
            LogKind::Events => event_lines(&bytes).map_err(|e| (StatusCode::BAD_REQUEST, e))?,
        };
        if lines.len() > MAX_LINES {
            return Err((
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("{} lines, over the limit of {MAX_LINES}", lines.len()),
            ));
        }
        let store = Arc::clone(&self.store);
        let now = (self.clock)();
        let outcome = tokio::task::spawn_blocking(move || {
            let (device, source) = match credential {
                Credential::Certificate(leaf) => match certified_device(&*store, &leaf)? {
                    Ok(d) => {
                        if claimed.as_ref().is_some_and(|c| *c != d.device_id) {
                            return Ok(Err((
                                StatusCode::FORBIDDEN,
                                format!("the client certificate is device {}'s, Skerry-Device-Id says another", d.device_id),
                            )));
                        }
                        let source = LogSource::Certificate { serial: d.serial };
                        (d.device_id, source)
                    }
                    Err(CertRefusal::Unauthenticated(m)) => {
                        return Ok(Err((StatusCode::UNAUTHORIZED, m)))
                    }
                    Err(CertRefusal::Forbidden(m)) => return Ok(Err((StatusCode::FORBIDDEN, m))),
                },
                Credential::Token(token) => {
                    let Some(device) = claimed else {
                        return Ok(Err((
                            StatusCode::UNAUTHORIZED,
                            "Skerry-Device-Id: required with a join token".to_string(),
                        )));
                    };
                    if let Err(s) = crate::enroll::check_name(
                        "Skerry-Device-Id",
                        &device,
                        crate::validate::MAX_DEVICE_ID,
                    ) {
                        return Ok(Err((StatusCode::BAD_REQUEST, s.message().to_string())));
                    }
                    let source = LogSource::Token {
                        secret_sha256: token.secret_sha256(),
                        id: token.id,
                    };
                    (device, source)
                }
            };
            store
                .append_device_log(&device, &source, kind, &lines, now)
                .map(|r| r.map_err(refusal))
        })
        .await
        .map_err(|_| (StatusCode::INTERNAL_SERVER_ERROR, "the log task failed".to_string()))?
        .map_err(|e| {
            tracing::error!(error = %chain(&e), "storing a device log failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "the server could not store the lines; retry later".to_string(),
            )
        })?;
        outcome
    }
}

fn refusal(r: LogRefusal) -> (StatusCode, String) {
    match r {
        LogRefusal::Token(t) => (StatusCode::UNAUTHORIZED, t.to_string()),
        LogRefusal::NotCurrentCertificate => (
            StatusCode::UNAUTHORIZED,
            "the client certificate is not this device's current one".into(),
        ),
        LogRefusal::DeviceRevoked => (StatusCode::FORBIDDEN, "the device is revoked".into()),
        LogRefusal::EnrolledDevice => (
            StatusCode::FORBIDDEN,
            "the device is enrolled: send its logs with its client certificate".into(),
        ),
        LogRefusal::TokenDeviceLimit => (
            StatusCode::FORBIDDEN,
            "the join token already carries the logs of as many devices as it has uses".into(),
        ),
    }
}
