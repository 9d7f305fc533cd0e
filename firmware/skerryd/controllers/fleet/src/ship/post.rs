//! One `POST` of a batch to a sink over TLS, the server CA pinned by the sink URL's
//! `ca=sha256:…` (as enrollment pins it): with the device's client certificate once it
//! is enrolled, else with the join token and `Skerry-Device-Id`. HTTP/1.1, one request
//! per connection; the answer read is bounded.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio_rustls::rustls::pki_types::pem::PemObject as _;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

use super::sink::SinkUrl;
use crate::enrollment::{pinned_tls, DeviceIdentity};

/// How long one post may take, connecting included.
pub const POST_TIMEOUT: Duration = Duration::from_secs(20);
/// The most of the server's answer read.
pub const MAX_ANSWER: usize = 8 * 1024;

/// How the device proves who it is.
#[derive(Debug, Clone)]
pub enum Credential {
    /// The enrolled identity (mutual TLS).
    Certificate(DeviceIdentity),
    /// The sink URL's join token, for a device not enrolled, naming itself.
    Token { device_id: String },
}

/// Why a post did not land; each says what to look at.
#[derive(Debug, thiserror::Error)]
pub enum PostError {
    #[error("could not reach {server}: {why}")]
    Connect { server: String, why: String },
    #[error("{server}: {why}")]
    Tls { server: String, why: String },
    #[error("{server} answered {status}: {body}")]
    Refused {
        server: String,
        status: u16,
        body: String,
    },
    #[error("{server} answered nonsense: {what}")]
    BadAnswer { server: String, what: String },
}

impl PostError {
    /// Whether the server refused what was sent (not worth sending again as it is).
    pub fn refused_body(&self) -> bool {
        matches!(
            self,
            PostError::Refused {
                status: 400 | 413,
                ..
            }
        )
    }
}

fn client_auth(
    identity: &DeviceIdentity,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), String> {
    let chain = CertificateDer::pem_file_iter(identity.certificate())
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{}: {e}", identity.certificate().display()))?;
    let key = PrivateKeyDer::from_pem_file(identity.key())
        .map_err(|e| format!("{}: {e}", identity.key().display()))?;
    Ok((chain, key))
}

/// Posts `body` to `sink` with `credential`; `Ok` once the server answered 2xx.
pub async fn post(sink: &SinkUrl, credential: &Credential, body: &str) -> Result<(), PostError> {
    let server = sink.at.server.clone();
    let tls_err = |why: String| PostError::Tls {
        server: server.clone(),
        why,
    };
    let client = match credential {
        Credential::Certificate(identity) => Some(client_auth(identity).map_err(tls_err)?),
        Credential::Token { .. } => None,
    };
    let (config, _) = pinned_tls(sink.at.ca_sha256, client).map_err(tls_err)?;
    let name = ServerName::try_from(sink.at.host.clone()).map_err(|e| tls_err(e.to_string()))?;
    let mut head = format!(
        "POST {} HTTP/1.1\r\nHost: {}:{}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n",
        sink.path,
        sink.at.host,
        sink.at.port,
        body.len()
    );
    if let Credential::Token { device_id } = credential {
        head.push_str(&format!(
            "Authorization: Bearer {}\r\nSkerry-Device-Id: {device_id}\r\n",
            sink.at.token
        ));
    }
    head.push_str("\r\n");
    let exchange = async {
        let tcp = tokio::net::TcpStream::connect((sink.at.host.as_str(), sink.at.port))
            .await
            .map_err(|e| PostError::Connect {
                server: server.clone(),
                why: e.to_string(),
            })?;
        let mut tls = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
            .map_err(|e| tls_err(e.to_string()))?;
        let io = |e: std::io::Error| PostError::Connect {
            server: server.clone(),
            why: e.to_string(),
        };
        tls.write_all(head.as_bytes()).await.map_err(io)?;
        tls.write_all(body.as_bytes()).await.map_err(io)?;
        tls.flush().await.map_err(io)?;
        let mut answer = Vec::new();
        let mut chunk = [0u8; 2048];
        while answer.len() < MAX_ANSWER {
            match tls.read(&mut chunk).await {
                Ok(0) => break,
                Ok(n) => answer.extend_from_slice(&chunk[..n]),
                // A server closing without close_notify after its answer is common.
                Err(_) if !answer.is_empty() => break,
                Err(e) => return Err(io(e)),
            }
        }
        Ok(answer)
    };
    let answer = tokio::time::timeout(POST_TIMEOUT, exchange)
        .await
        .map_err(|_| PostError::Connect {
            server: server.clone(),
            why: "timed out".into(),
        })??;
    read_status(&server, &answer)
}

/// The status of an HTTP/1.1 answer: `Ok` for 2xx, else the refusal with its body.
fn read_status(server: &str, answer: &[u8]) -> Result<(), PostError> {
    let text = String::from_utf8_lossy(answer);
    let bad = |what: &str| PostError::BadAnswer {
        server: server.to_owned(),
        what: what.to_owned(),
    };
    let status_line = text.lines().next().ok_or_else(|| bad("no answer"))?;
    let mut words = status_line.split(' ');
    if !words.next().is_some_and(|v| v.starts_with("HTTP/1.")) {
        return Err(bad("not an HTTP/1 status line"));
    }
    let status: u16 = words
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("no status code"))?;
    if (200..300).contains(&status) {
        return Ok(());
    }
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.trim())
        .unwrap_or_default();
    Err(PostError::Refused {
        server: server.to_owned(),
        status,
        body: body.chars().take(300).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_read_by_their_status_line() {
        assert!(read_status("s", b"HTTP/1.1 204 No Content\r\n\r\n").is_ok());
        let e = read_status(
            "s",
            b"HTTP/1.1 403 Forbidden\r\ncontent-length: 7\r\n\r\nrevoked",
        )
        .unwrap_err();
        assert!(
            matches!(e, PostError::Refused { status: 403, ref body, .. } if body == "revoked"),
            "{e}"
        );
        assert!(!e.refused_body());
        let e = read_status("s", b"HTTP/1.1 413 x\r\n\r\n").unwrap_err();
        assert!(e.refused_body());
        for junk in [&b""[..], b"SSH-2.0-x\r\n", b"HTTP/1.1 abc\r\n"] {
            assert!(matches!(
                read_status("s", junk),
                Err(PostError::BadAnswer { .. })
            ));
        }
    }
}
