//! The device-facing TLS listener (`--tls-listen`): the server certificate from
//! `DIR/pki` with the chain `[server leaf, server CA]`, ALPN `h2` and `http/1.1`, and a
//! client certificate that is optional at the TLS layer (a device that enrolls has none
//! yet) but, when sent, must chain to the device CA and be within its dates (rustls
//! checks both during the handshake). Who the certificate names, and whether it is that
//! device's current unrevoked one, is checked per request ([`crate::device_gate`]).

use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{self, RootCertStore, ServerConfig};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use crate::pki::Pki;

/// How long a peer may take to finish the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshakes in progress at once; further connections wait in the kernel's backlog.
pub const MAX_PENDING_HANDSHAKES: usize = 256;

/// Why the TLS configuration could not be made from the PKI.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error("the device CA certificate is not usable as a client root: {0}")]
    DeviceCa(String),
    #[error("the server certificate or key is not usable: {0}")]
    ServerCert(#[source] rustls::Error),
}

/// The rustls server configuration for the device-facing listener.
pub fn server_config(pki: &Pki) -> Result<Arc<ServerConfig>, TlsSetupError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from(pki.device_ca_der().to_vec()))
        .map_err(|e| TlsSetupError::DeviceCa(e.to_string()))?;
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .allow_unauthenticated()
        .build()
        .map_err(|e| TlsSetupError::DeviceCa(e.to_string()))?;
    let chain = vec![
        CertificateDer::from(pki.server_cert_der().to_vec()),
        CertificateDer::from(pki.server_ca_der().to_vec()),
    ];
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pki.server_key_der().to_vec()));
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(TlsSetupError::ServerCert)?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(TlsSetupError::ServerCert)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Accepts connections on `listener` and yields those whose TLS handshake finished.
/// Handshakes run concurrently (at most [`MAX_PENDING_HANDSHAKES`], each bounded by
/// [`HANDSHAKE_TIMEOUT`]), so a slow or silent peer holds up nobody; a failed one is
/// dropped (a peer with a certificate from another CA never gets a connection).
pub fn incoming(
    listener: TcpListener,
    config: Arc<ServerConfig>,
) -> tokio_stream::wrappers::ReceiverStream<Result<TlsStream<TcpStream>, std::io::Error>> {
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    let acceptor = TlsAcceptor::from(config);
    let permits = Arc::new(tokio::sync::Semaphore::new(MAX_PENDING_HANDSHAKES));
    tokio::spawn(async move {
        loop {
            let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
                return;
            };
            let tcp = tokio::select! {
                accepted = listener.accept() => accepted,
                () = tx.closed() => return,
            };
            let (tcp, _) = match tcp {
                Ok(t) => t,
                Err(e) => {
                    // Out of file descriptors and the like: say so, wait, carry on.
                    tracing::warn!(error = %e, "TLS listener: accepting failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let _ = tcp.set_nodelay(true);
            let acceptor = acceptor.clone();
            let tx = tx.clone();
            tokio::spawn(async move {
                let done = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await;
                drop(permit);
                if let Ok(Ok(stream)) = done {
                    let _ = tx.send(Ok(stream)).await;
                }
            });
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(rx)
}
