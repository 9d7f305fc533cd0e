//! Enrollment, the device's side of `docs/fleet-enrollment.md`: a join URL
//! (`fleet.join` in the config, or the kernel argument `skerry.join=…`, which wins) is
//! exchanged once for a client certificate; check-ins then use mutual TLS.
//!
//! The key is made here (ECDSA P-256), written `0600` under the state directory, and
//! never sent: only a CSR for `CN=<device id>` is. The server CA is pinned by the URL's
//! `ca=sha256:HEX`: the first connection's chain must end in a certificate whose DER
//! hashes to `HEX` and whose signature makes the leaf valid for the URL's host, else
//! nothing (not the token) is sent. That CA is then the only root.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sha2::{Digest as _, Sha256};
use skerry_proto::fleet::v1::enrollment_service_client::EnrollmentServiceClient;
use skerry_proto::fleet::v1::EnrollRequest;
use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::client::WebPkiServerVerifier;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use tokio_rustls::rustls::{self, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};

pub use crate::join_url::JoinUrl;

/// How long enrolling may take, connecting included.
pub const ENROLL_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest certificate kept from the server's answer.
pub const MAX_CERT_BYTES: usize = 16 * 1024;

/// Why enrollment failed; each names what to fix.
#[derive(Debug, thiserror::Error)]
pub enum EnrollError {
    #[error("join URL: {0} (expected https://HOST:PORT/?token=ID.SECRET&ca=sha256:HEX)")]
    Url(String),
    #[error("{path}: {doing}")]
    Io {
        path: PathBuf,
        doing: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("making the device key or CSR: {0}")]
    Key(String),
    #[error("the server at {server} did not present the pinned CA ({pinned}): {why}")]
    Pin {
        server: String,
        pinned: String,
        why: String,
    },
    #[error("could not reach {server}: {why}")]
    Connect { server: String, why: String },
    #[error("{server} refused the enrollment: {status}")]
    Refused {
        server: String,
        status: Box<tonic::Status>,
    },
    #[error("{server} answered nonsense: {what}")]
    BadAnswer { server: String, what: String },
}

/// The device's TLS material, under its state directory.
#[derive(Debug, Clone)]
pub struct DeviceIdentity {
    pub dir: PathBuf,
}

impl DeviceIdentity {
    pub fn new(dir: &Path) -> Self {
        Self { dir: dir.into() }
    }
    pub fn key(&self) -> PathBuf {
        self.dir.join("device.key")
    }
    pub fn certificate(&self) -> PathBuf {
        self.dir.join("device.crt")
    }
    pub fn server_ca(&self) -> PathBuf {
        self.dir.join("server-ca.crt")
    }
    pub fn device_ca(&self) -> PathBuf {
        self.dir.join("device-ca.crt")
    }

    /// Whether an identity was issued (certificate and key both present).
    pub fn enrolled(&self) -> bool {
        self.key().exists() && self.certificate().exists() && self.server_ca().exists()
    }

    /// The TLS settings of an mTLS check-in to `host`.
    pub fn client_tls(&self, host: &str) -> Result<ClientTlsConfig, EnrollError> {
        let read = |p: PathBuf| {
            std::fs::read(&p).map_err(|source| EnrollError::Io {
                path: p,
                doing: "reading",
                source,
            })
        };
        Ok(ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(read(self.server_ca())?))
            .identity(Identity::from_pem(
                read(self.certificate())?,
                read(self.key())?,
            ))
            .domain_name(host))
    }
}

fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<(), EnrollError> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let io = |doing| {
        move |source| EnrollError::Io {
            path: path.to_path_buf(),
            doing,
            source,
        }
    };
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .map_err(io("creating"))?;
    f.write_all(bytes).map_err(io("writing"))?;
    f.sync_all().map_err(io("syncing"))?;
    std::fs::rename(&tmp, path).map_err(io("renaming into place"))
}

fn pem(der: &[u8]) -> String {
    let b64 = base64(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out + "-----END CERTIFICATE-----\n"
}

fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::new();
    for c in data.chunks(3) {
        let n = c
            .iter()
            .enumerate()
            .fold(0u32, |a, (i, b)| a | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            s.push(if i <= c.len() {
                T[(n >> (18 - 6 * i) & 63) as usize] as char
            } else {
                '='
            });
        }
    }
    s
}

/// Accepts the server's chain only if its last certificate is the pinned CA and the leaf
/// verifies under it for the host; remembers that CA.
#[derive(Debug)]
pub(crate) struct PinnedCa {
    pin: [u8; 32],
    seen: Mutex<Option<Vec<u8>>>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl ServerCertVerifier for PinnedCa {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let ca = intermediates
            .last()
            .filter(|ca| Sha256::digest(ca.as_ref()).as_slice() == self.pin)
            .ok_or_else(|| {
                rustls::Error::General("no certificate in the chain has the pinned hash".into())
            })?;
        let mut roots = RootCertStore::empty();
        roots.add(ca.clone().into_owned())?;
        WebPkiServerVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&self.provider))
            .build()
            .map_err(|e| rustls::Error::General(e.to_string()))?
            .verify_server_cert(end_entity, &[], server_name, ocsp, now)?;
        *self.seen.lock().unwrap_or_else(|e| e.into_inner()) = Some(ca.to_vec());
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            m,
            c,
            d,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            m,
            c,
            d,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A TLS client that accepts only a server whose chain ends in the CA hashing to `pin`,
/// presenting `client` (certificate chain and key) when given; the verifier remembers
/// the CA it saw.
pub(crate) fn pinned_tls(
    pin: [u8; 32],
    client: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
) -> Result<(rustls::ClientConfig, Arc<PinnedCa>), String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = Arc::new(PinnedCa {
        pin,
        seen: Mutex::new(None),
        provider: Arc::clone(&provider),
    });
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(verifier.clone());
    let config = match client {
        Some((chain, key)) => builder
            .with_client_auth_cert(chain, key)
            .map_err(|e| format!("the device certificate and key: {e}"))?,
        None => builder.with_no_client_auth(),
    };
    Ok((config, verifier))
}

/// Connects once to `join`'s server and returns its CA's DER if it is the pinned one.
async fn pinned_server_ca(join: &JoinUrl) -> Result<Vec<u8>, EnrollError> {
    let pin_err = |why: String| EnrollError::Pin {
        server: join.server.clone(),
        pinned: format!(
            "sha256:{}",
            join.ca_sha256
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        ),
        why,
    };
    let (config, verifier) = pinned_tls(join.ca_sha256, None).map_err(pin_err)?;
    let name = ServerName::try_from(join.host.clone()).map_err(|e| pin_err(e.to_string()))?;
    let connect = async {
        let tcp = tokio::net::TcpStream::connect((join.host.as_str(), join.port))
            .await
            .map_err(|e| EnrollError::Connect {
                server: join.server.clone(),
                why: e.to_string(),
            })?;
        tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
            .map_err(|e| pin_err(e.to_string()))
    };
    tokio::time::timeout(ENROLL_TIMEOUT, connect)
        .await
        .map_err(|_| EnrollError::Connect {
            server: join.server.clone(),
            why: "timed out".into(),
        })??;
    let seen = verifier
        .seen
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take();
    seen.ok_or_else(|| pin_err("the handshake checked no chain".into()))
}

/// Enrolls `device_id` of `board` with `join`, writing `device.key` (0600),
/// `device.crt`, `device-ca.crt` and `server-ca.crt` into `identity.dir`.
pub async fn enroll(
    join: &JoinUrl,
    device_id: &str,
    board: &str,
    identity: &DeviceIdentity,
) -> Result<(), EnrollError> {
    let server_ca = pinned_server_ca(join).await?;
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
        .map_err(|e| EnrollError::Key(e.to_string()))?;
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, device_id);
    let csr = params
        .serialize_request(&key)
        .map_err(|e| EnrollError::Key(e.to_string()))?;
    std::fs::create_dir_all(&identity.dir).map_err(|source| EnrollError::Io {
        path: identity.dir.clone(),
        doing: "creating the identity directory",
        source,
    })?;
    // The key first: a crash after enrolling leaves a key without a certificate, and
    // the next start enrolls again (another use of the token) rather than losing it.
    write_file(&identity.key(), key.serialize_pem().as_bytes(), 0o600)?;
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(pem(&server_ca)))
        .domain_name(join.host.clone());
    let call = async {
        let channel = Endpoint::from_shared(join.server.clone())
            .map_err(|e| EnrollError::Url(e.to_string()))?
            .tls_config(tls)
            .map_err(|e| EnrollError::Connect {
                server: join.server.clone(),
                why: e.to_string(),
            })?
            .connect()
            .await
            .map_err(|e| EnrollError::Connect {
                server: join.server.clone(),
                why: format!("{e:?}"),
            })?;
        EnrollmentServiceClient::new(channel)
            .max_decoding_message_size(4 * MAX_CERT_BYTES)
            .enroll(EnrollRequest {
                token: join.token.clone(),
                device_id: device_id.to_string(),
                board: board.to_string(),
                csr_der: csr.der().to_vec(),
            })
            .await
            .map(tonic::Response::into_inner)
            .map_err(|s| EnrollError::Refused {
                server: join.server.clone(),
                status: Box::new(s),
            })
    };
    let answer = tokio::time::timeout(ENROLL_TIMEOUT, call)
        .await
        .map_err(|_| EnrollError::Connect {
            server: join.server.clone(),
            why: "timed out".into(),
        })??;
    let bad = |what: &str| EnrollError::BadAnswer {
        server: join.server.clone(),
        what: what.into(),
    };
    if answer.server_ca_der != server_ca {
        return Err(bad("its server CA is not the one it presented"));
    }
    for der in [&answer.certificate_der, &answer.device_ca_der] {
        if der.is_empty() || der.len() > MAX_CERT_BYTES {
            return Err(bad("a certificate empty or over 16 KiB"));
        }
    }
    write_file(
        &identity.device_ca(),
        pem(&answer.device_ca_der).as_bytes(),
        0o644,
    )?;
    write_file(&identity.server_ca(), pem(&server_ca).as_bytes(), 0o644)?;
    write_file(
        &identity.certificate(),
        pem(&answer.certificate_der).as_bytes(),
        0o644,
    )
}
