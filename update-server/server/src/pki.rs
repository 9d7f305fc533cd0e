//! The server's certificate authorities, made at first start under `DIR/pki/`: the
//! **server CA** (the root a device pins by the SHA-256 of its DER, from the join URL's
//! `ca=sha256:…`), the **server certificate** it signs for the listener, and the
//! **device CA** that issues each device's client certificate from the device's CSR.
//! Keys are ECDSA P-256, written `0600`. Contract: `docs/fleet-enrollment.md`.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
    PKCS_ECDSA_P256_SHA256, PKCS_ED25519,
};
use sha2::{Digest as _, Sha256};

/// A device certificate's lifetime.
pub const DEVICE_CERT_VALIDITY: Duration = Duration::from_secs(365 * 86_400);
/// The largest CSR accepted.
pub const MAX_CSR_BYTES: usize = 8 * 1024;
/// The URI SAN naming a device: `urn:skerry:device:<id>`.
pub const DEVICE_URI_PREFIX: &str = "urn:skerry:device:";

const CA_VALIDITY: Duration = Duration::from_secs(20 * 365 * 86_400);
const SERVER_CERT_VALIDITY: Duration = Duration::from_secs(825 * 86_400);

/// Why the PKI could not be loaded or made.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("{path}: {doing}")]
    Io {
        path: PathBuf,
        doing: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a usable key or certificate")]
    Bad {
        path: PathBuf,
        #[source]
        source: rcgen::Error,
    },
    #[error("making a certificate")]
    Make(#[source] rcgen::Error),
}

/// Why a device's CSR was refused (the gRPC answer is `INVALID_ARGUMENT` with this).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CsrError {
    #[error("csr_der: {0} bytes, over the limit of {MAX_CSR_BYTES}")]
    TooLarge(usize),
    #[error("csr_der: not a PKCS#10 request with a valid self-signature ({0})")]
    Unparsable(String),
    #[error("csr_der: key type not accepted (ECDSA P-256 or Ed25519)")]
    KeyType,
    #[error("csr_der: subject must be exactly CN={expected}")]
    Subject { expected: String },
    #[error("csr_der: subject alternative names may only be {DEVICE_URI_PREFIX}{expected}")]
    AltName { expected: String },
}

/// A certificate issued to a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedCertificate {
    pub der: Vec<u8>,
    /// Lowercase hex of the serial number.
    pub serial: String,
    pub not_after: SystemTime,
}

/// The loaded authorities and the listener's certificate.
pub struct Pki {
    server_ca_der: Vec<u8>,
    device_ca_der: Vec<u8>,
    device_ca: Issuer<'static, KeyPair>,
    server_cert_der: Vec<u8>,
    server_key_der: Vec<u8>,
}

impl std::fmt::Debug for Pki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pki")
            .field("server_ca", &fingerprint(&self.server_ca_der))
            .finish_non_exhaustive()
    }
}

/// `sha256:<hex>` of a certificate's DER: what the join URL's `ca=` pins.
pub fn fingerprint(der: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(der)))
}

fn io(path: &Path, doing: &'static str) -> impl FnOnce(std::io::Error) -> PkiError {
    let path = path.to_path_buf();
    move |source| PkiError::Io {
        path,
        doing,
        source,
    }
}

/// Writes `text` to `path` with `mode`, by a temporary file renamed into place.
fn write_file(path: &Path, text: &str, mode: u32) -> Result<(), PkiError> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .map_err(io(&tmp, "creating"))?;
    f.write_all(text.as_bytes()).map_err(io(&tmp, "writing"))?;
    f.sync_all().map_err(io(&tmp, "syncing"))?;
    std::fs::rename(&tmp, path).map_err(io(path, "renaming into place"))
}

fn random_serial() -> SerialNumber {
    let mut bytes = [0u8; 16];
    // getrandom fails only without an OS random source; the serial then still differs
    // per certificate by the time, and uniqueness is what the store relies on.
    if getrandom::getrandom(&mut bytes).is_err() {
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        bytes = nanos.to_be_bytes();
    }
    bytes[0] &= 0x7f; // positive
    bytes[0] |= 0x01; // and 16 bytes long, so the hex form is stable
    SerialNumber::from_slice(&bytes)
}

fn ca_params(name: &str, now: SystemTime) -> CertificateParams {
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, name);
    p.distinguished_name = dn;
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p.not_before = (now - Duration::from_secs(3600)).into();
    p.not_after = (now + CA_VALIDITY).into();
    p.serial_number = Some(random_serial());
    p
}

/// Loads a CA from `NAME.crt`/`NAME.key` in `dir`, making it first if absent.
fn load_or_make_ca(
    dir: &Path,
    name: &str,
    cn: &str,
    now: SystemTime,
) -> Result<(Vec<u8>, Issuer<'static, KeyPair>), PkiError> {
    let crt = dir.join(format!("{name}.crt"));
    let key = dir.join(format!("{name}.key"));
    if !crt.exists() || !key.exists() {
        let k = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(PkiError::Make)?;
        let cert = ca_params(cn, now).self_signed(&k).map_err(PkiError::Make)?;
        write_file(&key, &k.serialize_pem(), 0o600)?;
        write_file(&crt, &cert.pem(), 0o644)?;
    }
    let key_pem = std::fs::read_to_string(&key).map_err(io(&key, "reading"))?;
    let crt_pem = std::fs::read_to_string(&crt).map_err(io(&crt, "reading"))?;
    let k = KeyPair::from_pem(&key_pem).map_err(|source| PkiError::Bad {
        path: key.clone(),
        source,
    })?;
    let der = pem_der(&crt, &crt_pem)?;
    let issuer =
        Issuer::from_ca_cert_der(&der.clone().into(), k).map_err(|source| PkiError::Bad {
            path: crt.clone(),
            source,
        })?;
    Ok((der, issuer))
}

fn pem_der(path: &Path, pem_text: &str) -> Result<Vec<u8>, PkiError> {
    let block = pem_text
        .split("-----BEGIN CERTIFICATE-----")
        .nth(1)
        .and_then(|rest| rest.split("-----END CERTIFICATE-----").next())
        .ok_or_else(|| PkiError::Bad {
            path: path.to_path_buf(),
            source: rcgen::Error::CouldNotParseCertificate,
        })?;
    let b64: String = block.chars().filter(|c| !c.is_whitespace()).collect();
    base64_decode(&b64).ok_or_else(|| PkiError::Bad {
        path: path.to_path_buf(),
        source: rcgen::Error::CouldNotParseCertificate,
    })
}

fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0;
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

/// The server CA's DER from `dir` (made first if absent, as the server's first start
/// would), without touching the server certificate: what `token create` pins.
/// The lock file in the PKI directory, held while its files are read or made.
pub const LOCK_FILE: &str = ".pki.lock";

/// Creates `dir` and takes its exclusive lock (an `flock`: several instances sharing one
/// data directory may start at once, and only one may make the CAs; the others then
/// load them). Held until the returned file is dropped.
fn lock_pki(dir: &Path) -> Result<std::fs::File, PkiError> {
    std::fs::create_dir_all(dir).map_err(io(dir, "creating the PKI directory"))?;
    let path = dir.join(LOCK_FILE);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io(&path, "opening the lock"))?;
    rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive)
        .map_err(std::io::Error::from)
        .map_err(io(&path, "locking"))?;
    Ok(file)
}

pub fn load_server_ca(dir: &Path, now: SystemTime) -> Result<Vec<u8>, PkiError> {
    let _lock = lock_pki(dir)?;
    Ok(load_or_make_ca(dir, "server-ca", "skerry server CA", now)?.0)
}

impl Pki {
    /// Loads `dir` (normally `DATA/pki`), making what is missing. The server
    /// certificate is issued anew at every start for `names` (DNS names or IP
    /// addresses), so a changed `--tls-name` takes effect; the CAs are kept.
    pub fn load_or_create(dir: &Path, names: &[String], now: SystemTime) -> Result<Self, PkiError> {
        let _lock = lock_pki(dir)?;
        let (server_ca_der, server_ca) =
            load_or_make_ca(dir, "server-ca", "skerry server CA", now)?;
        let (device_ca_der, device_ca) =
            load_or_make_ca(dir, "device-ca", "skerry device CA", now)?;
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(PkiError::Make)?;
        let mut params = CertificateParams::new(names.to_vec()).map_err(PkiError::Make)?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "skerry-server");
        params.distinguished_name = dn;
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.not_before = (now - Duration::from_secs(3600)).into();
        params.not_after = (now + SERVER_CERT_VALIDITY).into();
        params.serial_number = Some(random_serial());
        let cert = params.signed_by(&key, &server_ca).map_err(PkiError::Make)?;
        write_file(&dir.join("server.key"), &key.serialize_pem(), 0o600)?;
        write_file(&dir.join("server.crt"), &cert.pem(), 0o644)?;
        Ok(Self {
            server_ca_der,
            device_ca_der,
            device_ca,
            server_cert_der: cert.der().to_vec(),
            server_key_der: key.serialize_der(),
        })
    }

    pub fn server_ca_der(&self) -> &[u8] {
        &self.server_ca_der
    }

    pub fn device_ca_der(&self) -> &[u8] {
        &self.device_ca_der
    }

    /// The listener's certificate (DER), signed by the server CA.
    pub fn server_cert_der(&self) -> &[u8] {
        &self.server_cert_der
    }

    /// The listener's private key (PKCS#8 DER).
    pub fn server_key_der(&self) -> &[u8] {
        &self.server_key_der
    }

    /// Issues `device_id` a client certificate of the key in `csr_der`, after checking
    /// the CSR's self-signature, key type and that it names exactly this device.
    pub fn issue_device(
        &self,
        device_id: &str,
        csr_der: &[u8],
        now: SystemTime,
    ) -> Result<IssuedCertificate, CsrError> {
        if csr_der.len() > MAX_CSR_BYTES {
            return Err(CsrError::TooLarge(csr_der.len()));
        }
        let csr = CertificateSigningRequestParams::from_der(&csr_der.to_vec().into())
            .map_err(|e| CsrError::Unparsable(e.to_string()))?;
        let alg = csr.public_key.algorithm();
        if *alg != PKCS_ECDSA_P256_SHA256 && *alg != PKCS_ED25519 {
            return Err(CsrError::KeyType);
        }
        let subject: Vec<_> = csr.params.distinguished_name.iter().collect();
        let names_device = matches!(
            subject.as_slice(),
            [(DnType::CommonName, value)] if dn_text(value) == Some(device_id)
        );
        if !names_device {
            return Err(CsrError::Subject {
                expected: device_id.to_string(),
            });
        }
        let uri = format!("{DEVICE_URI_PREFIX}{device_id}");
        let sans_ok = csr.params.subject_alt_names.iter().all(|san| match san {
            SanType::URI(u) => u.as_str() == uri,
            _ => false,
        });
        if !sans_ok {
            return Err(CsrError::AltName {
                expected: device_id.to_string(),
            });
        }
        let serial = random_serial();
        let not_after = now + DEVICE_CERT_VALIDITY;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, device_id);
        params.distinguished_name = dn;
        params.subject_alt_names = vec![SanType::URI(uri.try_into().map_err(|_| {
            CsrError::AltName {
                expected: device_id.to_string(),
            }
        })?)];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.not_before = (now - Duration::from_secs(300)).into();
        params.not_after = not_after.into();
        params.serial_number = Some(serial.clone());
        let signed = CertificateSigningRequestParams {
            params,
            public_key: csr.public_key,
        };
        let cert = signed
            .signed_by(&self.device_ca)
            .map_err(|e| CsrError::Unparsable(e.to_string()))?;
        Ok(IssuedCertificate {
            der: cert.der().to_vec(),
            serial: hex::encode(serial.as_ref()),
            not_after,
        })
    }
}

fn dn_text(value: &rcgen::DnValue) -> Option<&str> {
    match value {
        rcgen::DnValue::Utf8String(s) => Some(s.as_str()),
        rcgen::DnValue::PrintableString(s) => Some(s.as_str()),
        _ => None,
    }
}

/// The device a certificate (already verified to chain to the device CA) names, and
/// its serial in lowercase hex; `None` when it names no device.
pub fn device_of(cert_der: &[u8]) -> Option<(String, String)> {
    let (_, cert) = x509_parser::parse_x509_certificate(cert_der).ok()?;
    let serial = hex::encode(cert.raw_serial());
    let san = cert.subject_alternative_name().ok()??;
    san.value.general_names.iter().find_map(|n| match n {
        x509_parser::extensions::GeneralName::URI(u) => u
            .strip_prefix(DEVICE_URI_PREFIX)
            .map(|id| (id.to_string(), serial.clone())),
        _ => None,
    })
}
