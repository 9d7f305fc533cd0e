//! TLS to PostgreSQL with rustls: the client hands us the socket after the server agreed
//! to TLS, and the server's certificate is checked as the connection string's
//! [`Verify`] says. Channel binding is not offered (SCRAM without `-PLUS`).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect, TlsStream};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::client::WebPkiServerVerifier;
use tokio_rustls::rustls::crypto::{ring, verify_tls12_signature, verify_tls13_signature};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use tokio_rustls::rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, Error as RustlsError, RootCertStore,
    SignatureScheme,
};

use super::conninfo::{ClientCert, RootCert, Verify};

/// The largest `sslrootcert` file read.
pub const ROOT_CERT_LIMIT: u64 = 1024 * 1024;

/// Why the TLS settings could not be put together.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error("reading sslrootcert {path}")]
    Read {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("sslrootcert {path} is larger than 1 MiB")]
    TooLarge { path: String },
    #[error("sslrootcert {path} holds no PEM certificate")]
    NoCertificate { path: String },
    #[error("sslrootcert {path}: {reason}")]
    BadCertificate { path: String, reason: String },
    /// `sslcert` or `sslkey` unusable (unreadable, too large, no PEM of the kind, a key
    /// others may read, or the two do not match).
    #[error("{what} {path}: {reason}")]
    ClientCert {
        what: &'static str,
        path: String,
        reason: String,
    },
}

/// Makes the TLS side of each new connection.
#[derive(Debug, Clone)]
pub struct DatabaseTls {
    config: Arc<ClientConfig>,
}

impl DatabaseTls {
    /// The client configuration `verify` asks for, its roots (and the client
    /// certificate and key, if given) read now.
    pub fn new(verify: &Verify, client: Option<&ClientCert>) -> Result<Self, TlsSetupError> {
        let provider = Arc::new(ring::default_provider());
        let verifier: Arc<dyn ServerCertVerifier> = match verify {
            Verify::Nothing => Arc::new(Unverified(Arc::clone(&provider))),
            Verify::Chain(root) => Arc::new(ChainOnly(webpki(root, &provider)?)),
            Verify::ChainAndName(root) => webpki(root, &provider)?,
        };
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("ring offers the default protocol versions")
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        let config = match client {
            None => builder.with_no_client_auth(),
            Some(c) => {
                let (chain, key) = client_cert(c)?;
                builder.with_client_auth_cert(chain, key).map_err(|e| {
                    TlsSetupError::ClientCert {
                        what: "sslkey",
                        path: c.key.display().to_string(),
                        reason: format!("does not go with sslcert {}: {e}", c.cert.display()),
                    }
                })?
            }
        };
        Ok(Self {
            config: Arc::new(config),
        })
    }
}

/// Reads at most [`ROOT_CERT_LIMIT`] bytes of `path`.
fn read_bounded(path: &std::path::Path) -> io::Result<Option<Vec<u8>>> {
    read_file_bounded(&std::fs::File::open(path)?)
}

/// [`read_bounded`] of a file already open; `None` past the limit.
fn read_file_bounded(file: &std::fs::File) -> io::Result<Option<Vec<u8>>> {
    let mut bytes = Vec::new();
    io::Read::read_to_end(&mut io::Read::take(file, ROOT_CERT_LIMIT + 1), &mut bytes)?;
    Ok((bytes.len() as u64 <= ROOT_CERT_LIMIT).then_some(bytes))
}

/// The client certificate chain and key, as libpq takes them: the key file may not be
/// readable by group or others (root-owned and group-readable is allowed).
fn client_cert(
    c: &ClientCert,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsSetupError> {
    let refuse =
        |what: &'static str, path: &std::path::Path, reason: String| TlsSetupError::ClientCert {
            what,
            path: path.display().to_string(),
            reason,
        };
    let read = |what: &'static str, path: &std::path::Path| match read_bounded(path) {
        Ok(Some(bytes)) => Ok(bytes),
        Ok(None) => Err(refuse(what, path, "larger than 1 MiB".into())),
        Err(e) => Err(refuse(what, path, format!("cannot read it: {e}"))),
    };
    let pem = read("sslcert", &c.cert)?;
    let chain = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| refuse("sslcert", &c.cert, e.to_string()))?;
    if chain.is_empty() {
        return Err(refuse(
            "sslcert",
            &c.cert,
            "holds no PEM certificate".into(),
        ));
    }
    // The key's permissions are those of the file read (one open), as libpq checks
    // them: owned by us, no group or other bits; owned by root, at most 0640.
    let file = std::fs::File::open(&c.key)
        .map_err(|e| refuse("sslkey", &c.key, format!("cannot read it: {e}")))?;
    let meta = file
        .metadata()
        .map_err(|e| refuse("sslkey", &c.key, format!("cannot read it: {e}")))?;
    if !meta.is_file() {
        return Err(refuse("sslkey", &c.key, "is not a file".into()));
    }
    let mode = std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o777;
    let owner = std::os::unix::fs::MetadataExt::uid(&meta);
    let forbidden = if owner == 0 && rustix::process::geteuid().as_raw() != 0 {
        0o037
    } else {
        0o077
    };
    if mode & forbidden != 0 {
        return Err(refuse(
            "sslkey",
            &c.key,
            format!("group or others may use it (mode {mode:o}); chmod 600 it"),
        ));
    }
    let pem = read_file_bounded(&file)
        .map_err(|e| refuse("sslkey", &c.key, format!("cannot read it: {e}")))?
        .ok_or_else(|| refuse("sslkey", &c.key, "larger than 1 MiB".into()))?;
    let key = PrivateKeyDer::from_pem_slice(&pem)
        .map_err(|e| refuse("sslkey", &c.key, format!("no PEM private key: {e}")))?;
    Ok((chain, key))
}

fn roots(root: &RootCert) -> Result<RootCertStore, TlsSetupError> {
    let mut store = RootCertStore::empty();
    let path = match root {
        RootCert::System => {
            store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            return Ok(store);
        }
        RootCert::File(path) => path,
    };
    let shown = path.display().to_string();
    let read = |source| TlsSetupError::Read {
        path: shown.clone(),
        source,
    };
    let Some(pem) = read_bounded(path).map_err(read)? else {
        return Err(TlsSetupError::TooLarge { path: shown });
    };
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| TlsSetupError::BadCertificate {
            path: shown.clone(),
            reason: e.to_string(),
        })?;
        store.add(cert).map_err(|e| TlsSetupError::BadCertificate {
            path: shown.clone(),
            reason: e.to_string(),
        })?;
    }
    if store.is_empty() {
        return Err(TlsSetupError::NoCertificate { path: shown });
    }
    Ok(store)
}

fn webpki(
    root: &RootCert,
    provider: &Arc<tokio_rustls::rustls::crypto::CryptoProvider>,
) -> Result<Arc<WebPkiServerVerifier>, TlsSetupError> {
    WebPkiServerVerifier::builder_with_provider(Arc::new(roots(root)?), Arc::clone(provider))
        .build()
        .map_err(|e| TlsSetupError::BadCertificate {
            path: format!("{root:?}"),
            reason: e.to_string(),
        })
}

/// Takes any certificate, but still checks the handshake was signed by its key.
#[derive(Debug)]
struct Unverified(Arc<tokio_rustls::rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for Unverified {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, RustlsError> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, RustlsError> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, RustlsError> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The chain up to a root, whatever name the certificate is for (libpq's verify-ca).
/// webpki checks the chain before the name, so a name mismatch means the chain held.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, RustlsError> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(RustlsError::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, RustlsError> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, RustlsError> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

impl<S> MakeTlsConnect<S> for DatabaseTls
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = Stream<S>;
    type TlsConnect = Connect;
    type Error = RustlsError;

    fn make_tls_connect(&mut self, host: &str) -> Result<Connect, RustlsError> {
        let name = ServerName::try_from(host.to_string())
            .map_err(|_| RustlsError::General(format!("{host:?} is not a host name for TLS")))?;
        Ok(Connect {
            config: Arc::clone(&self.config),
            name,
        })
    }
}

/// The TLS side of one connection to `name`.
#[derive(Debug)]
pub struct Connect {
    config: Arc<ClientConfig>,
    name: ServerName<'static>,
}

type Handshake<S> = Pin<Box<dyn Future<Output = io::Result<Stream<S>>> + Send>>;

impl<S> TlsConnect<S> for Connect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = Stream<S>;
    type Error = io::Error;
    type Future = Handshake<S>;

    fn connect(self, socket: S) -> Handshake<S> {
        let connector = tokio_rustls::TlsConnector::from(self.config);
        Box::pin(async move {
            let tls = connector.connect(self.name, socket).await?;
            Ok(Stream(Box::new(tls)))
        })
    }
}

/// A TLS connection to the database.
pub struct Stream<S>(Box<tokio_rustls::client::TlsStream<S>>);

impl<S> std::fmt::Debug for Stream<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Stream(TLS to PostgreSQL)")
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> TlsStream for Stream<S> {
    fn channel_binding(&self) -> ChannelBinding {
        ChannelBinding::none()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for Stream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Stream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_shutdown(cx)
    }
}
