//! The node's TLS material from a directory laid out as `skerryctl gen secrets --out
//! DIR` writes it: `ca.crt` (the machine CA, which signs client certificates),
//! `node.crt` and `node.key` (the node's certificate and its key). Each file is
//! checked on its own first, so an error names the file that is wrong.

use std::path::{Path, PathBuf};

use skerry_api::ServerTls;

/// The machine CA's certificate.
pub const CA_CERT: &str = "ca.crt";
/// The node's certificate.
pub const NODE_CERT: &str = "node.crt";
/// The node's private key.
pub const NODE_KEY: &str = "node.key";
/// The largest PEM file read.
pub const MAX_PEM_BYTES: u64 = 64 * 1024;

/// Why the node's TLS material could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TlsLoadError {
    /// A file is not there.
    #[error("{} is missing: the API needs {CA_CERT}, {NODE_CERT} and {NODE_KEY} in {}, as `skerryctl gen secrets --out DIR` writes them", path.display(), dir.display())]
    Missing {
        /// The file.
        path: PathBuf,
        /// The directory it was looked for in.
        dir: PathBuf,
    },
    /// A file could not be read.
    #[error("cannot read {}", path.display())]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A file is larger than a PEM file of this kind can be.
    #[error("{} is {size} bytes; a PEM file here is at most {MAX_PEM_BYTES}", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size.
        size: u64,
    },
    /// A file does not hold what it should.
    #[error("{} is not {expected}: {reason}", path.display())]
    Bad {
        /// The file.
        path: PathBuf,
        /// What it should hold.
        expected: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The node certificate was not signed by (any certificate in) the CA file: the
    /// two come from different `skerryctl gen secrets` runs, and no client could
    /// check the node, nor the node its clients.
    #[error("{} is not signed by the CA in {} ({reason}): both must come from the same `skerryctl gen secrets` run", cert.display(), ca.display())]
    NotIssuedByCa {
        /// The node certificate.
        cert: PathBuf,
        /// The CA file.
        ca: PathBuf,
        /// What the check found.
        reason: String,
    },
    /// Each file is well formed but rustls refuses them together (most often: the key
    /// is not the one of the node certificate, from another `gen secrets` run).
    #[error("{} and {} do not go together (is the key the certificate's, from the same `skerryctl gen secrets` run?)", cert.display(), key.display())]
    Refused {
        /// The node certificate.
        cert: PathBuf,
        /// The node key.
        key: PathBuf,
        /// What rustls said.
        #[source]
        source: skerry_api::ServeError,
    },
}

fn read(dir: &Path, name: &str) -> Result<(PathBuf, Vec<u8>), TlsLoadError> {
    let path = dir.join(name);
    let metadata = match std::fs::metadata(&path) {
        Ok(metadata) => metadata,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(TlsLoadError::Missing {
                path,
                dir: dir.to_owned(),
            })
        }
        Err(source) => return Err(TlsLoadError::Unreadable { path, source }),
    };
    // Opening a FIFO for reading would wait for a writer: the daemon would hang at
    // start instead of naming the file.
    if !metadata.is_file() {
        return Err(TlsLoadError::Bad {
            path,
            expected: "a PEM file",
            reason: format!("it is {}, not a regular file", file_kind(&metadata)),
        });
    }
    if metadata.len() > MAX_PEM_BYTES {
        return Err(TlsLoadError::TooLarge {
            size: metadata.len(),
            path,
        });
    }
    let bytes = std::fs::read(&path).map_err(|source| TlsLoadError::Unreadable {
        path: path.clone(),
        source,
    })?;
    Ok((path, bytes))
}

/// What a file that is not a regular file is, for an error message.
fn file_kind(metadata: &std::fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt as _;
    let kind = metadata.file_type();
    if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_block_device() || kind.is_char_device() {
        "a device"
    } else {
        "not a regular file"
    }
}

/// Every certificate in a PEM file; at least one.
fn certificates(path: &Path, bytes: &[u8]) -> Result<usize, TlsLoadError> {
    let bad = |reason: String| TlsLoadError::Bad {
        path: path.to_owned(),
        expected: "a PEM certificate",
        reason,
    };
    let mut count = 0;
    for pem in x509_parser::pem::Pem::iter_from_buffer(bytes) {
        let pem = pem.map_err(|e| bad(format!("the PEM does not parse ({e})")))?;
        if pem.label != "CERTIFICATE" {
            return Err(bad(format!("it holds a {:?} block", pem.label)));
        }
        pem.parse_x509()
            .map_err(|e| bad(format!("certificate {} does not parse ({e})", count + 1)))?;
        count += 1;
    }
    if count == 0 {
        return Err(bad("it holds no PEM block".to_owned()));
    }
    Ok(count)
}

/// The node certificate (the first in its file) is signed by one of the CA file's
/// certificates. Both files already parsed in [`certificates`].
fn issued_by_ca(
    ca_path: &Path,
    ca: &[u8],
    cert_path: &Path,
    cert: &[u8],
) -> Result<(), TlsLoadError> {
    let refused = |reason: String| TlsLoadError::NotIssuedByCa {
        cert: cert_path.to_owned(),
        ca: ca_path.to_owned(),
        reason,
    };
    let pems = |bytes: &[u8]| -> Vec<x509_parser::pem::Pem> {
        x509_parser::pem::Pem::iter_from_buffer(bytes)
            .filter_map(Result::ok)
            .collect()
    };
    let node_pems = pems(cert);
    let Some(node) = node_pems.first().and_then(|p| p.parse_x509().ok()) else {
        return Err(refused("it holds no certificate".to_owned()));
    };
    let ca_pems = pems(ca);
    let mut last = String::from("the CA file holds no certificate");
    for pem in &ca_pems {
        let Ok(authority) = pem.parse_x509() else {
            continue;
        };
        match node.verify_signature(Some(authority.public_key())) {
            Ok(()) => return Ok(()),
            Err(e) => {
                last = format!(
                    "the signature does not verify with the key of {} ({e})",
                    authority.subject()
                )
            }
        }
    }
    Err(refused(last))
}

fn private_key(path: &Path, bytes: &[u8]) -> Result<(), TlsLoadError> {
    let bad = |reason: String| TlsLoadError::Bad {
        path: path.to_owned(),
        expected: "a PEM private key",
        reason,
    };
    let mut blocks = x509_parser::pem::Pem::iter_from_buffer(bytes);
    let pem = blocks
        .next()
        .ok_or_else(|| bad("it holds no PEM block".to_owned()))?
        .map_err(|e| bad(format!("the PEM does not parse ({e})")))?;
    if !pem.label.ends_with("PRIVATE KEY") {
        return Err(bad(format!("it holds a {:?} block", pem.label)));
    }
    if blocks.next().is_some() {
        return Err(bad("it holds more than one PEM block".to_owned()));
    }
    Ok(())
}

/// Loads and checks the node's TLS material from `dir` (see the module doc).
pub fn load_server_tls(dir: &Path) -> Result<ServerTls, TlsLoadError> {
    let (ca_path, ca) = read(dir, CA_CERT)?;
    let (cert_path, cert) = read(dir, NODE_CERT)?;
    let (key_path, key) = read(dir, NODE_KEY)?;
    certificates(&ca_path, &ca)?;
    certificates(&cert_path, &cert)?;
    private_key(&key_path, &key)?;
    issued_by_ca(&ca_path, &ca, &cert_path, &cert)?;
    let tls = ServerTls::from_pem(cert, key, ca);
    tls.check().map_err(|source| TlsLoadError::Refused {
        cert: cert_path,
        key: key_path,
        source,
    })?;
    Ok(tls)
}
