//! The simulated devices: one task and one HTTP/2 connection each, checking in back to
//! back until the run ends.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use prost::Message;
use skerry_proto::fleet::v1 as pb;

use crate::server::Server;

#[derive(Debug, Clone)]
pub enum Target {
    /// skerry-server's gRPC check-in.
    Grpc(SocketAddr),
    /// Two instances of it: even-numbered devices check in with the first, odd with the
    /// second.
    GrpcPair(SocketAddr, SocketAddr),
    /// A static file of the same size (`GET /checkin`).
    Static(SocketAddr),
    /// [`Target::Grpc`] over mutual TLS, device `n` presenting certificate `n`.
    GrpcTls(SocketAddr, crate::tls::DeviceTls),
    /// [`Target::Static`] over mutual TLS.
    StaticTls(SocketAddr, crate::tls::DeviceTls),
    /// A hawkBit DDI poll (`GET /DEFAULT/controller/v1/{id}`) over HTTP/1.1 keep-alive,
    /// device `n` sending `TargetToken tokens[n]` (none: anonymous, as goosebit takes).
    DdiPoll(SocketAddr, Option<Arc<Vec<String>>>),
}

/// Kill the server this long into the run and start it again on the same data.
pub struct Restart<'a> {
    pub after: Duration,
    pub server: &'a mut Server,
}

#[derive(Debug, Default)]
pub struct LoadResult {
    /// Check-ins whose answer acknowledged the report they carried.
    pub completed: u64,
    pub elapsed: Duration,
    /// Microseconds per completed check-in.
    pub latencies: Vec<u32>,
    pub errors: u64,
    pub response_bytes: usize,
    /// Per device, the highest sequence the server acknowledged.
    pub acknowledged: HashMap<String, u64>,
}

impl LoadResult {
    pub fn per_second(&self) -> f64 {
        self.completed as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    pub fn percentile_ms(&self, q: f64) -> f64 {
        if self.latencies.is_empty() {
            return f64::NAN;
        }
        let mut v = self.latencies.clone();
        v.sort_unstable();
        let i = ((v.len() as f64 * q).ceil() as usize).clamp(1, v.len()) - 1;
        v[i] as f64 / 1000.0
    }
}

#[derive(Debug, Default)]
struct DeviceResult {
    id: String,
    completed: u64,
    latencies: Vec<u32>,
    errors: u64,
    response_bytes: usize,
    acknowledged: u64,
}

pub async fn run(
    target: Target,
    devices: usize,
    length: Duration,
    restart: Option<Restart<'_>>,
) -> Result<LoadResult, String> {
    let start = Instant::now();
    let deadline = start + length;
    let mut tasks = Vec::with_capacity(devices);
    for n in 0..devices {
        let id = format!("load-{n:05}");
        let target = target.clone();
        tasks.push(tokio::spawn(async move {
            match target {
                Target::Grpc(addr) => grpc_device(id, addr, None, deadline).await,
                Target::GrpcPair(a, b) => {
                    grpc_device(id, if n % 2 == 0 { a } else { b }, None, deadline).await
                }
                Target::Static(addr) => static_device(id, addr, None, deadline).await,
                Target::GrpcTls(addr, tls) => {
                    grpc_device(id, addr, tls.get(n).cloned(), deadline).await
                }
                Target::StaticTls(addr, tls) => {
                    static_device(id, addr, tls.get(n).cloned(), deadline).await
                }
                Target::DdiPoll(addr, tokens) => {
                    let token = tokens.and_then(|t| t.get(n).cloned());
                    ddi_device(id, addr, token, deadline).await
                }
            }
        }));
    }
    if let Some(r) = restart {
        tokio::time::sleep(r.after).await;
        // Blocks this (the driving) thread only; the devices run on the workers.
        tokio::task::block_in_place(|| r.server.kill_and_restart())?;
    }
    let mut out = LoadResult::default();
    for t in tasks {
        let d = t.await.map_err(|e| format!("device task: {e}"))??;
        out.completed += d.completed;
        out.errors += d.errors;
        out.latencies.extend(d.latencies);
        out.response_bytes = out.response_bytes.max(d.response_bytes);
        out.acknowledged.insert(d.id, d.acknowledged);
    }
    out.elapsed = start.elapsed();
    Ok(out)
}

fn request(id: &str, reports: Vec<pb::UpgradeReport>) -> pb::CheckInRequest {
    pb::CheckInRequest {
        device_id: id.into(),
        board: "pi".into(),
        version: "1.0.0".into(),
        channel: "stable".into(),
        labels: HashMap::from([("site".to_string(), "load".to_string())]),
        slots: vec![pb::SlotState {
            name: "a".into(),
            version: "1.0.0".into(),
            status: pb::SlotStatus::Good as i32,
            booted: true,
        }],
        health: Some(pb::Health {
            state: pb::HealthState::Healthy as i32,
            failing_checks: vec![],
        }),
        reports,
    }
}

fn report(sequence: u64) -> pb::UpgradeReport {
    pb::UpgradeReport {
        sequence,
        target_version: "2.0.0".into(),
        step: pb::UpgradeStep::Downloading as i32,
        // Names the report, so the database can be searched for it afterwards.
        reason: format!("load report {sequence}"),
        at: None,
    }
}

/// The gRPC method a device calls.
const CHECK_IN_PATH: &str = "/skerry.fleet.v1.FleetService/CheckIn";

/// One gRPC device over the same hyper HTTP/2 client the static device uses, so the
/// two rows differ only in what answers: the check-in as a length-prefixed protobuf
/// message, the answer's status read from its trailers.
async fn grpc_device(
    id: String,
    addr: SocketAddr,
    tls: Option<Tls>,
    deadline: Instant,
) -> Result<DeviceResult, String> {
    let mut send = h2_connect(addr, tls.as_ref()).await?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let mut d = DeviceResult {
        id: id.clone(),
        ..Default::default()
    };
    // Reports not yet acknowledged, resent until they are.
    let mut pending: Vec<pb::UpgradeReport> = Vec::new();
    let mut next = 1u64;
    while Instant::now() < deadline {
        if pending.is_empty() {
            pending.push(report(next));
            next += 1;
        }
        let newest = pending.last().map(|r| r.sequence).unwrap_or(0);
        let sent = Instant::now();
        let answer = match grpc_call(&mut send, addr, scheme, &request(&id, pending.clone())).await
        {
            Ok(a) => a,
            Err(Call::Refused) => {
                d.errors += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
            Err(Call::Connection) => {
                // The server went away (the restart run): connect again.
                d.errors += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
                if let Ok(s) = h2_connect(addr, tls.as_ref()).await {
                    send = s;
                }
                continue;
            }
        };
        d.response_bytes = answer.encoded_len() + 5;
        let acked = answer.acknowledged_sequence;
        if acked < d.acknowledged {
            return Err(format!(
                "{id}: acknowledged sequence went back from {} to {acked}",
                d.acknowledged
            ));
        }
        d.acknowledged = acked;
        pending.retain(|r| r.sequence > acked);
        if acked >= newest {
            d.completed += 1;
            d.latencies
                .push(sent.elapsed().as_micros().min(u32::MAX as u128) as u32);
        }
    }
    Ok(d)
}

/// Why a gRPC call gave no answer.
enum Call {
    /// The server answered, but not with a check-in answer (a gRPC error status).
    Refused,
    /// The connection failed.
    Connection,
}

/// A device's TLS client configuration (its own certificate).
type Tls = Arc<tokio_rustls::rustls::ClientConfig>;

type H2 = hyper::client::conn::http2::SendRequest<http_body_util::Full<bytes::Bytes>>;

/// An HTTP/2 connection to `addr`: cleartext with prior knowledge, or TLS with `h2`.
async fn h2_connect(addr: SocketAddr, tls: Option<&Tls>) -> Result<H2, String> {
    let exec = hyper_util::rt::TokioExecutor::new();
    let failed = |e: hyper::Error| format!("h2 handshake with {addr}: {e}");
    let send = match tls {
        None => {
            let (send, conn) = hyper::client::conn::http2::handshake(exec, connect(addr).await?)
                .await
                .map_err(failed)?;
            tokio::spawn(conn);
            send
        }
        Some(config) => {
            let stream = crate::tls::connect(addr, config).await?;
            let (send, conn) = hyper::client::conn::http2::handshake(exec, stream)
                .await
                .map_err(failed)?;
            tokio::spawn(conn);
            send
        }
    };
    Ok(send)
}

async fn grpc_call(
    send: &mut H2,
    addr: SocketAddr,
    scheme: &str,
    message: &pb::CheckInRequest,
) -> Result<pb::CheckInResponse, Call> {
    use http_body_util::BodyExt;
    let encoded = message.encode_to_vec();
    let mut frame = Vec::with_capacity(5 + encoded.len());
    frame.push(0); // not compressed
    frame.extend_from_slice(&(encoded.len() as u32).to_be_bytes());
    frame.extend_from_slice(&encoded);
    let req = http::Request::post(format!("{scheme}://{addr}{CHECK_IN_PATH}"))
        .header(http::header::CONTENT_TYPE, "application/grpc")
        .header(http::header::TE, "trailers")
        .body(http_body_util::Full::new(bytes::Bytes::from(frame)))
        .map_err(|_| Call::Refused)?;
    let resp = send.send_request(req).await.map_err(|_| Call::Connection)?;
    if resp.status() != 200 {
        return Err(Call::Refused);
    }
    let whole = resp
        .into_body()
        .collect()
        .await
        .map_err(|_| Call::Connection)?;
    let status = whole
        .trailers()
        .and_then(|t| t.get("grpc-status"))
        .map(|v| v.as_bytes().to_vec());
    if status.as_deref() != Some(b"0") {
        return Err(Call::Refused);
    }
    let body = whole.to_bytes();
    if body.len() < 5 || body[0] != 0 {
        return Err(Call::Refused);
    }
    let len = u32::from_be_bytes([body[1], body[2], body[3], body[4]]) as usize;
    let message = body.get(5..5 + len).ok_or(Call::Refused)?;
    pb::CheckInResponse::decode(message).map_err(|_| Call::Refused)
}

/// One device's TCP connection (no Nagle delay), for hyper.
async fn connect(
    addr: SocketAddr,
) -> Result<hyper_util::rt::TokioIo<tokio::net::TcpStream>, String> {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect {addr}: {e}"))?;
    stream.set_nodelay(true).ok();
    Ok(hyper_util::rt::TokioIo::new(stream))
}

impl DeviceResult {
    /// One request answered: `bytes` long, sent at `sent`.
    fn answered(&mut self, sent: Instant, bytes: usize) {
        self.response_bytes = bytes;
        self.completed += 1;
        self.latencies
            .push(sent.elapsed().as_micros().min(u32::MAX as u128) as u32);
    }
}

async fn static_device(
    id: String,
    addr: SocketAddr,
    tls: Option<Tls>,
    deadline: Instant,
) -> Result<DeviceResult, String> {
    use http_body_util::BodyExt;
    let mut send = h2_connect(addr, tls.as_ref()).await?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let mut d = DeviceResult {
        id,
        ..Default::default()
    };
    while Instant::now() < deadline {
        let req = http::Request::get(format!("{scheme}://{addr}/checkin"))
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .map_err(|e| e.to_string())?;
        let sent = Instant::now();
        match send.send_request(req).await {
            Ok(resp) if resp.status() == 200 => {
                let body = resp
                    .into_body()
                    .collect()
                    .await
                    .map_err(|e| format!("body: {e}"))?
                    .to_bytes();
                d.answered(sent, body.len());
            }
            Ok(resp) => return Err(format!("nginx answered {}", resp.status())),
            Err(_) => d.errors += 1,
        }
    }
    Ok(d)
}

/// One DDI device: polls its controller base back to back on one HTTP/1.1 connection.
async fn ddi_device(
    id: String,
    addr: SocketAddr,
    token: Option<String>,
    deadline: Instant,
) -> Result<DeviceResult, String> {
    use http_body_util::{BodyExt, Empty};
    let stream = connect(addr).await?;
    let (mut send, conn) = hyper::client::conn::http1::handshake(stream)
        .await
        .map_err(|e| format!("HTTP/1.1 handshake with {addr}: {e}"))?;
    tokio::spawn(conn);
    let mut d = DeviceResult {
        id: id.clone(),
        ..Default::default()
    };
    while Instant::now() < deadline {
        let mut req = http::Request::get(format!("/DEFAULT/controller/v1/{id}"))
            .header(http::header::HOST, addr.to_string());
        if let Some(t) = &token {
            req = req.header(http::header::AUTHORIZATION, format!("TargetToken {t}"));
        }
        let req = req
            .body(Empty::<bytes::Bytes>::new())
            .map_err(|e| e.to_string())?;
        let sent = Instant::now();
        let answer = match send.send_request(req).await {
            Ok(a) => a,
            Err(e) => return Err(format!("{id}: the connection to {addr} failed: {e}")),
        };
        let status = answer.status();
        let body = answer
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("body: {e}"))?
            .to_bytes();
        if status != 200 {
            return Err(format!(
                "{id}: the DDI poll at {addr} answered {status}: {}",
                String::from_utf8_lossy(&body)
            ));
        }
        d.answered(sent, body.len());
    }
    Ok(d)
}
