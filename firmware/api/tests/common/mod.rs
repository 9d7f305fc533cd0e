//! Test fixtures: a throwaway machine PKI and the test machine (`FixedMachine`) served
//! on a loopback port.

#![allow(dead_code, reason = "each test binary uses a different part")]

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use skerry_api::testing::FixedMachine;
use skerry_api::{pb, ClientTls, Role, ServerTls, VersionInfo};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A PEM certificate and its key.
pub struct Pem {
    pub cert: String,
    pub key: String,
}

/// A certificate authority that signs node and client certificates.
pub struct Ca {
    pub cert_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl Ca {
    pub fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Ca {
            cert_pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    pub fn node(&self) -> Pem {
        let mut params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, "node");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.sign(params)
    }

    /// A client certificate whose subject Organizations are `orgs`.
    pub fn client(&self, orgs: &[&str]) -> Pem {
        let params = client_params(orgs);
        self.sign(params)
    }

    pub fn client_for(&self, role: Role) -> Pem {
        self.client(&[role.organization()])
    }

    /// A client certificate that expired in 2001.
    pub fn expired_client(&self, role: Role) -> Pem {
        let mut params = client_params(&[role.organization()]);
        params.not_before = rcgen::date_time_ymd(2000, 1, 1);
        params.not_after = rcgen::date_time_ymd(2001, 1, 1);
        self.sign(params)
    }

    fn sign(&self, params: CertificateParams) -> Pem {
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Pem {
            cert: cert.pem(),
            key: key.serialize_pem(),
        }
    }
}

/// Client parameters with each of `orgs` (at most two) as a subject Organization; rcgen
/// keeps one value per attribute type, so the second goes in under the same OID spelled
/// as a custom type.
fn client_params(orgs: &[&str]) -> CertificateParams {
    assert!(orgs.len() <= 2);
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, "client");
    let types = [
        DnType::OrganizationName,
        DnType::CustomDnType(vec![2, 5, 4, 10]),
    ];
    for (ty, org) in types.into_iter().zip(orgs) {
        params.distinguished_name.push(ty, *org);
    }
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params
}

/// Two checks, one critical and healthy, one not critical and failing.
pub fn sample_health() -> pb::HealthResponse {
    pb::HealthResponse {
        overall: pb::HealthStatus::Healthy.into(),
        checks: vec![
            pb::HealthCheck {
                name: "api-port".into(),
                critical: true,
                status: pb::HealthStatus::Healthy.into(),
                message: String::new(),
                last_run: Some(prost_types::Timestamp {
                    seconds: 1_700_000_000,
                    nanos: 0,
                }),
                consecutive_failures: 0,
            },
            pb::HealthCheck {
                name: "disk".into(),
                critical: false,
                status: pb::HealthStatus::Unhealthy.into(),
                message: "var is 97% full".into(),
                last_run: None,
                consecutive_failures: 3,
            },
        ],
    }
}

pub fn sample_version() -> VersionInfo {
    VersionInfo {
        daemon_version: "0.1.0".into(),
        release_version: "2026.12.1".into(),
        board: "rpi4".into(),
        booted_slot: "A".into(),
    }
}

/// The API served on a loopback port; dropped, it shuts the server down.
pub struct Served {
    pub endpoint: String,
    pub ca: Ca,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), skerry_api::ServeError>>>,
}

impl Served {
    pub async fn start() -> Served {
        let ca = Ca::new("machine CA");
        let node = ca.node();
        let tls = ServerTls::from_pem(&node.cert, &node.key, &ca.cert_pem);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let machine = FixedMachine {
            version: sample_version(),
            health: sample_health(),
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            skerry_api::serve(listener, &tls, machine, async {
                let _ = stopped.await;
            })
            .await
        });
        Served {
            endpoint: format!("https://localhost:{port}"),
            ca,
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub fn client_tls(&self, pem: &Pem) -> ClientTls {
        ClientTls::from_pem(&self.ca.cert_pem, &pem.cert, &pem.key, "localhost")
    }

    /// Stops the server and checks it ended cleanly.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
    }
}
