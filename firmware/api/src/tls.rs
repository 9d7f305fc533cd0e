//! The TLS material of each side. The server presents the node certificate and
//! requires a client certificate signed by the machine CA (rustls checks the chain and
//! the validity dates during the handshake); the client presents its role certificate
//! and trusts only the machine CA.

use std::time::Duration;

use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};

/// How long a peer may take to finish the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The server's side: node certificate chain and key, and the machine CA that signs
/// client certificates (all PEM).
#[derive(Debug, Clone)]
pub struct ServerTls {
    config: ServerTlsConfig,
}

impl ServerTls {
    /// From PEM text; tonic/rustls parse it when the server starts and report a bad
    /// file as [`ServeError::Transport`](crate::ServeError::Transport).
    pub fn from_pem(
        node_cert_chain: impl AsRef<[u8]>,
        node_key: impl AsRef<[u8]>,
        machine_ca: impl AsRef<[u8]>,
    ) -> Self {
        let config = ServerTlsConfig::new()
            .identity(Identity::from_pem(node_cert_chain, node_key))
            .client_ca_root(Certificate::from_pem(machine_ca))
            .client_auth_optional(false)
            .timeout(HANDSHAKE_TIMEOUT);
        ServerTls { config }
    }

    /// Whether rustls accepts this material as it would when serving: every PEM
    /// parses, and the node key belongs to the node certificate. [`serve`](crate::serve)
    /// fails the same way, only later.
    pub fn check(&self) -> Result<(), crate::ServeError> {
        tonic::transport::Server::builder()
            .tls_config(self.config())
            .map(|_| ())
            .map_err(|source| crate::ServeError::Transport { source })
    }

    pub(crate) fn config(&self) -> ServerTlsConfig {
        self.config.clone()
    }
}

/// The client's side: its role certificate and key, the machine CA it trusts, and the
/// name it expects in the node certificate (a DNS name or an IP address).
#[derive(Debug, Clone)]
pub struct ClientTls {
    config: ClientTlsConfig,
}

impl ClientTls {
    /// A client that presents `client_cert`/`client_key` (PEM).
    pub fn from_pem(
        machine_ca: impl AsRef<[u8]>,
        client_cert: impl AsRef<[u8]>,
        client_key: impl AsRef<[u8]>,
        server_name: impl Into<String>,
    ) -> Self {
        let config = Self::anonymous(machine_ca, server_name)
            .config
            .identity(Identity::from_pem(client_cert, client_key));
        ClientTls { config }
    }

    /// A client that presents no certificate (the server refuses it; for tests and
    /// for telling an operator what went wrong).
    pub fn anonymous(machine_ca: impl AsRef<[u8]>, server_name: impl Into<String>) -> Self {
        let config = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(machine_ca))
            .domain_name(server_name)
            .timeout(HANDSHAKE_TIMEOUT);
        ClientTls { config }
    }

    pub(crate) fn config(&self) -> ClientTlsConfig {
        self.config.clone()
    }
}
