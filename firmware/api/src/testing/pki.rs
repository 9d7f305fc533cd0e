//! A throwaway machine PKI for tests: a CA that signs the node's server certificate
//! (for `localhost` and `127.0.0.1`) and client certificates whose subject
//! Organizations name roles, as the gate reads them.

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

use crate::roles::Role;
use crate::{ClientTls, ServerTls};

/// The most subject Organizations a test client certificate carries.
pub const MAX_ORGANIZATIONS: usize = 2;

/// What went wrong making a test certificate.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// More Organizations than [`MAX_ORGANIZATIONS`] were asked for.
    #[error(
        "a test client certificate carries at most {MAX_ORGANIZATIONS} Organizations, not {0}"
    )]
    TooManyOrganizations(usize),
    /// rcgen could not make a key or a certificate.
    #[error("making a test certificate: {0}")]
    Rcgen(#[from] rcgen::Error),
}

/// A PEM certificate and its private key.
#[derive(Debug, Clone)]
pub struct Pem {
    /// The certificate.
    pub cert: String,
    /// Its private key.
    pub key: String,
}

/// A certificate authority that signs node and client certificates.
pub struct TestCa {
    /// The CA certificate, PEM: what clients and the node trust.
    pub cert_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl std::fmt::Debug for TestCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCa").finish_non_exhaustive()
    }
}

impl TestCa {
    /// A new self-signed CA whose common name is `name`.
    pub fn new(name: &str) -> Result<TestCa, PkiError> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate()?;
        let cert = params.self_signed(&key)?;
        Ok(TestCa {
            cert_pem: cert.pem(),
            issuer: Issuer::new(params, key),
        })
    }

    /// The node's server certificate, for `localhost` and `127.0.0.1`.
    pub fn node(&self) -> Result<Pem, PkiError> {
        let mut params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])?;
        params.distinguished_name.push(DnType::CommonName, "node");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.sign(params)
    }

    /// A client certificate whose subject Organizations are `orgs` (none, one or two).
    pub fn client(&self, orgs: &[&str]) -> Result<Pem, PkiError> {
        self.sign(client_params(orgs)?)
    }

    /// A client certificate for `role`.
    pub fn client_for(&self, role: Role) -> Result<Pem, PkiError> {
        self.client(&[role.organization()])
    }

    /// A client certificate for `role` that expired in 2001.
    pub fn expired_client(&self, role: Role) -> Result<Pem, PkiError> {
        let mut params = client_params(&[role.organization()])?;
        params.not_before = rcgen::date_time_ymd(2000, 1, 1);
        params.not_after = rcgen::date_time_ymd(2001, 1, 1);
        self.sign(params)
    }

    /// The server TLS of a new node certificate, trusting this CA's clients.
    pub fn server_tls(&self) -> Result<ServerTls, PkiError> {
        let node = self.node()?;
        Ok(ServerTls::from_pem(&node.cert, &node.key, &self.cert_pem))
    }

    /// The client TLS of `pem`, trusting this CA, for a node named `localhost`.
    pub fn client_tls(&self, pem: &Pem) -> ClientTls {
        ClientTls::from_pem(&self.cert_pem, &pem.cert, &pem.key, "localhost")
    }

    fn sign(&self, params: CertificateParams) -> Result<Pem, PkiError> {
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(Pem {
            cert: cert.pem(),
            key: key.serialize_pem(),
        })
    }
}

/// Client parameters with each of `orgs` as a subject Organization; rcgen keeps one
/// value per attribute type, so the second goes in under the same OID spelled as a
/// custom type.
fn client_params(orgs: &[&str]) -> Result<CertificateParams, PkiError> {
    if orgs.len() > MAX_ORGANIZATIONS {
        return Err(PkiError::TooManyOrganizations(orgs.len()));
    }
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name.push(DnType::CommonName, "client");
    let types = [
        DnType::OrganizationName,
        DnType::CustomDnType(vec![2, 5, 4, 10]),
    ];
    for (ty, org) in types.into_iter().zip(orgs) {
        params.distinguished_name.push(ty, *org);
    }
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    Ok(params)
}
