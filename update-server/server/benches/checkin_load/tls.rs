//! The mutual-TLS rows, the transport enrolled devices use: each device enrolls over the
//! server's TLS port with a join token (a key and CSR of its own) and then checks in
//! presenting the certificate the server issued. nginx serves the same body over TLS
//! with the server's own certificate and requires a client certificate from the same
//! device CA, so both rows run the same handshake, ciphers and HTTP/2 (ALPN `h2`).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use skerry_proto::fleet::v1 as pb;
use skerry_proto::fleet::v1::enrollment_service_client::EnrollmentServiceClient;
use tokio_rustls::rustls::pki_types::{
    CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName,
};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

/// The name the server's certificate is issued for by default.
const SERVER_NAME: &str = "localhost";

/// One TLS client configuration per device, each with its own certificate.
pub type DeviceTls = Arc<Vec<Arc<ClientConfig>>>;

/// The DER of the first certificate in `pem` (read from `path`).
fn pem_certificate(path: &Path, pem: &[u8]) -> Result<Vec<u8>, String> {
    let (_, parsed) = x509_parser::pem::parse_x509_pem(pem)
        .map_err(|e| format!("{}: not a PEM certificate: {e}", path.display()))?;
    Ok(parsed.contents)
}

fn provider() -> Arc<tokio_rustls::rustls::crypto::CryptoProvider> {
    Arc::new(tokio_rustls::rustls::crypto::ring::default_provider())
}

fn client_config(
    roots: &RootCertStore,
    cert_der: Vec<u8>,
    key_der: Vec<u8>,
) -> Result<Arc<ClientConfig>, String> {
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key_der));
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS versions: {e}"))?
        .with_root_certificates(roots.clone())
        .with_client_auth_cert(vec![CertificateDer::from(cert_der)], key)
        .map_err(|e| format!("the device certificate: {e}"))?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}

/// Enrolls `count` devices (`load-00000`, …) with the server whose data directory is
/// `data` and TLS port `tls`: one join token for all, one enrollment each.
pub async fn enroll_devices(
    data: &Path,
    tls: SocketAddr,
    count: usize,
) -> Result<DeviceTls, String> {
    let now = skerry_rollout::UnixTime::from_system(std::time::SystemTime::now());
    let db = skerry_server::fleet_db::FleetDb::open(data, None)
        .map_err(|e| format!("opening {}: {e}", data.display()))?;
    let uses = u32::try_from(count).map_err(|_| "too many devices".to_string())?;
    let token =
        skerry_server::enroll_admin::create_token(&db, uses, Duration::from_secs(3600), &[], now)
            .map_err(|e| format!("creating a join token: {e}"))?
            .reveal();
    let ca_path = data.join("pki/server-ca.crt");
    let ca_pem = std::fs::read(&ca_path).map_err(|e| format!("{}: {e}", ca_path.display()))?;
    let server_ca = pem_certificate(&ca_path, &ca_pem)?;
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from(server_ca))
        .map_err(|e| format!("the server CA: {e}"))?;
    let channel = tonic::transport::Endpoint::from_shared(format!("https://{tls}"))
        .map_err(|e| e.to_string())?
        .tls_config(
            tonic::transport::ClientTlsConfig::new()
                .ca_certificate(tonic::transport::Certificate::from_pem(ca_pem))
                .domain_name(SERVER_NAME),
        )
        .map_err(|e| format!("enrollment TLS: {e}"))?
        .connect()
        .await
        .map_err(|e| format!("connecting to the TLS port {tls}: {e}"))?;
    let mut client = EnrollmentServiceClient::new(channel);
    let mut configs = Vec::with_capacity(count);
    for n in 0..count {
        let device = format!("load-{n:05}");
        let key = rcgen::KeyPair::generate().map_err(|e| format!("a device key: {e}"))?;
        let mut params = rcgen::CertificateParams::default();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, device.as_str());
        let csr = params
            .serialize_request(&key)
            .map_err(|e| format!("a CSR: {e}"))?;
        let answer = client
            .enroll(pb::EnrollRequest {
                token: token.clone(),
                device_id: device.clone(),
                board: "pi".into(),
                csr_der: csr.der().to_vec(),
            })
            .await
            .map_err(|e| format!("enrolling {device}: {e}"))?
            .into_inner();
        configs.push(client_config(
            &roots,
            answer.certificate_der,
            key.serialize_der(),
        )?);
    }
    Ok(Arc::new(configs))
}

/// A device's TLS connection to `addr`, ready for hyper.
pub async fn connect(
    addr: SocketAddr,
    config: &Arc<ClientConfig>,
) -> Result<TokioIo<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>, String> {
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect {addr}: {e}"))?;
    tcp.set_nodelay(true).ok();
    let name = ServerName::try_from(SERVER_NAME).expect("a valid DNS name");
    let tls = tokio_rustls::TlsConnector::from(Arc::clone(config))
        .connect(name, tcp)
        .await
        .map_err(|e| format!("TLS handshake with {addr}: {e}"))?;
    Ok(TokioIo::new(tls))
}
