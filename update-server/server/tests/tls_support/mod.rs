//! A server with its device-facing TLS listener on 127.0.0.1 (and its plaintext one),
//! the real system clock (rustls checks certificate dates against it), tokens made by
//! the operator code, and devices that enroll with a key and CSR of their own.

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair};
use skerry_proto::fleet::v1 as pb;
use skerry_proto::fleet::v1::enrollment_service_client::EnrollmentServiceClient;
use skerry_proto::fleet::v1::fleet_service_client::FleetServiceClient;
use skerry_rollout::UnixTime;
use skerry_server::device_http::certificate_pem;
use skerry_server::join_token::JoinToken;
use skerry_server::ServerConfig;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

pub struct TlsServer {
    pub plain: SocketAddr,
    pub tls: Option<SocketAddr>,
    pub data: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), skerry_server::ServeError>>>,
}

pub fn unix_now() -> UnixTime {
    UnixTime::from_system(SystemTime::now())
}

/// `GET path` over plaintext HTTP/1.1; the status code, or 0 if nothing answered.
fn plain_get_status(addr: SocketAddr, path: &str) -> u16 {
    let Ok(mut s) = std::net::TcpStream::connect(addr) else {
        return 0;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    if s.write_all(req.as_bytes()).is_err() {
        return 0;
    }
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

impl TlsServer {
    /// Starts a server; `with_tls` adds the TLS listener; `tune` may change the config.
    pub async fn start(with_tls: bool, tune: impl FnOnce(&mut ServerConfig)) -> Self {
        Self::start_on(tempfile::tempdir().unwrap(), with_tls, tune).await
    }

    /// As [`start`](Self::start), on a data directory kept from an earlier server.
    pub async fn start_on(
        data: tempfile::TempDir,
        with_tls: bool,
        tune: impl FnOnce(&mut ServerConfig),
    ) -> Self {
        let mut config = ServerConfig::new(data.path().join("srv"));
        tune(&mut config);
        let plain_l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let plain = plain_l.local_addr().unwrap();
        let (tls_l, tls) = if with_tls {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let a = l.local_addr().unwrap();
            (Some(l), Some(a))
        } else {
            (None, None)
        };
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(skerry_server::serve_with_tls(
            plain_l,
            tls_l,
            config,
            async {
                let _ = stopped.await;
            },
        ));
        for _ in 0..400 {
            if tokio::task::spawn_blocking(move || plain_get_status(plain, "/healthz") == 200)
                .await
                .unwrap()
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        Self {
            plain,
            tls,
            data,
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub fn srv(&self) -> PathBuf {
        self.data.path().join("srv")
    }

    /// The server's data directory and embedded database, as operator commands open them.
    pub fn db(&self) -> skerry_server::fleet_db::FleetDb {
        skerry_server::fleet_db::FleetDb::open(&self.srv(), None).unwrap()
    }

    pub fn tls_port(&self) -> u16 {
        self.tls.expect("started with TLS").port()
    }

    pub fn server_ca_pem(&self) -> String {
        std::fs::read_to_string(self.srv().join("pki/server-ca.crt")).unwrap()
    }

    /// A token made by the operator command's code, created at `now`.
    pub fn token(&self, uses: u32, ttl: Duration, now: UnixTime) -> JoinToken {
        skerry_server::enroll_admin::create_token(&self.db(), uses, ttl, &[], now).unwrap()
    }

    /// A gRPC channel to the TLS port trusting only the server CA, presenting
    /// `identity` (certificate PEM, key PEM) if given.
    pub async fn channel(&self, identity: Option<&Device>) -> Result<Channel, String> {
        let mut tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(self.server_ca_pem()))
            .domain_name("localhost");
        if let Some(d) = identity {
            tls = tls.identity(Identity::from_pem(&d.cert_pem, &d.key_pem));
        }
        Endpoint::from_shared(format!("https://127.0.0.1:{}", self.tls_port()))
            .unwrap()
            .tls_config(tls)
            .map_err(|e| format!("{e:?}"))?
            .connect()
            .await
            .map_err(|e| format!("{e:?}"))
    }

    pub async fn plain_channel(&self) -> Channel {
        Endpoint::from_shared(format!("http://{}", self.plain))
            .unwrap()
            .connect()
            .await
            .unwrap()
    }

    /// Enrolls `device` with `token` over TLS (no client certificate).
    pub async fn enroll(&self, token: &str, device: &str) -> Result<Device, tonic::Status> {
        let channel = self
            .channel(None)
            .await
            .map_err(tonic::Status::unavailable)?;
        let (key, csr) = csr(device);
        let answer = EnrollmentServiceClient::new(channel)
            .enroll(pb::EnrollRequest {
                token: token.to_string(),
                device_id: device.to_string(),
                board: "pi".into(),
                csr_der: csr,
            })
            .await?
            .into_inner();
        Ok(Device {
            id: device.to_string(),
            cert_pem: certificate_pem(&answer.certificate_der),
            key_pem: key.serialize_pem(),
            cert_der: answer.certificate_der,
        })
    }

    /// A check-in of `device_id` over TLS presenting `identity`.
    pub async fn check_in_tls(&self, identity: Option<&Device>, device_id: &str) -> Outcome {
        let channel = match self.channel(identity).await {
            Ok(c) => c,
            Err(e) => return Outcome::Transport(e),
        };
        outcome(
            FleetServiceClient::new(channel)
                .check_in(check_in_request(device_id))
                .await,
        )
    }

    pub async fn check_in_plain(&self, device_id: &str) -> Outcome {
        outcome(
            FleetServiceClient::new(self.plain_channel().await)
                .check_in(check_in_request(device_id))
                .await,
        )
    }

    pub async fn stop(self) {
        drop(self.stop_keeping_data().await);
    }

    /// Stops the server and hands back its data directory.
    pub async fn stop_keeping_data(mut self) -> tempfile::TempDir {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
        let empty = tempfile::tempdir().unwrap();
        std::mem::replace(&mut self.data, empty)
    }
}

/// What a check-in came to.
#[derive(Debug)]
pub enum Outcome {
    Answered(pb::CheckInResponse),
    Refused(tonic::Code, String),
    /// The connection failed (a refused handshake shows here).
    Transport(String),
}

fn outcome(r: Result<tonic::Response<pb::CheckInResponse>, tonic::Status>) -> Outcome {
    match r {
        Ok(a) => Outcome::Answered(a.into_inner()),
        // tonic reports a broken connection as UNAVAILABLE, UNKNOWN or CANCELLED (the
        // connection went away under the call); the server's own refusals are other codes.
        Err(s)
            if matches!(
                s.code(),
                tonic::Code::Unavailable | tonic::Code::Unknown | tonic::Code::Cancelled
            ) =>
        {
            Outcome::Transport(format!("{s:?}"))
        }
        Err(s) => Outcome::Refused(s.code(), s.message().to_string()),
    }
}

/// An enrolled device's material.
#[derive(Debug, Clone)]
pub struct Device {
    pub id: String,
    pub cert_pem: String,
    pub key_pem: String,
    pub cert_der: Vec<u8>,
}

impl Device {
    /// Writes `NAME.crt` and `NAME.key` into `dir` (for curl).
    pub fn write(&self, dir: &std::path::Path, name: &str) -> (PathBuf, PathBuf) {
        let crt = dir.join(format!("{name}.crt"));
        let key = dir.join(format!("{name}.key"));
        std::fs::write(&crt, &self.cert_pem).unwrap();
        std::fs::write(&key, &self.key_pem).unwrap();
        (crt, key)
    }
}

/// A P-256 key and a CSR for `CN=cn`.
pub fn csr(cn: &str) -> (KeyPair, Vec<u8>) {
    let key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    p.distinguished_name = dn;
    let der = p.serialize_request(&key).unwrap().der().to_vec();
    (key, der)
}

/// A device certificate for `device` from a CA of its own (not the server's), shaped
/// exactly like one the server issues.
pub fn stranger_device(device: &str) -> Device {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::default();
    ca.distinguished_name
        .push(DnType::CommonName, "skerry device CA");
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::default();
    p.distinguished_name.push(DnType::CommonName, device);
    p.subject_alt_names = vec![rcgen::SanType::URI(
        format!("urn:skerry:device:{device}").try_into().unwrap(),
    )];
    p.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let cert = p.signed_by(&key, &issuer).unwrap();
    drop(ca_cert);
    Device {
        id: device.into(),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        cert_der: cert.der().to_vec(),
    }
}

pub fn check_in_request(device: &str) -> pb::CheckInRequest {
    pb::CheckInRequest {
        device_id: device.into(),
        board: "pi".into(),
        version: "1.0.0".into(),
        channel: "stable".into(),
        labels: HashMap::new(),
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
        reports: vec![],
    }
}
