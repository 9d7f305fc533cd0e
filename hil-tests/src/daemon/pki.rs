//! A throwaway machine PKI for a simulated board's daemon: the CA, the node's server
//! certificate for 127.0.0.1, and one client certificate per role, laid out as
//! `skerryctl gen secrets` lays them out (`ca.crt`, `node.crt`, `node.key`).

use std::path::Path;

use anyhow::Context as _;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// The roles a client certificate can name, as the subject Organization.
pub const ROLES: [&str; 3] = ["os:admin", "os:operator", "os:reader"];

/// A certificate and its key, PEM.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The certificate.
    pub cert: String,
    /// Its private key.
    pub key: String,
}

/// The machine CA and the identities it signed.
#[derive(Debug, Clone)]
pub struct Pki {
    /// The CA certificate clients trust.
    pub ca: String,
    /// One client identity per entry of [`ROLES`], in that order.
    pub clients: Vec<Identity>,
}

impl Pki {
    /// Generates a PKI and writes the CA and the node's identity into `dir`.
    pub fn create(dir: &Path) -> anyhow::Result<Pki> {
        let mut ca_params = CertificateParams::default();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "simulated board CA");
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_key = KeyPair::generate()?;
        let ca_cert = ca_params.self_signed(&ca_key)?;
        let issuer = Issuer::new(ca_params, ca_key);

        let mut node =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])?;
        node.distinguished_name
            .push(DnType::CommonName, "localhost");
        node.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let node_key = KeyPair::generate()?;
        let node_cert = node.signed_by(&node_key, &issuer)?;

        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        for (name, text) in [
            ("ca.crt", ca_cert.pem()),
            ("node.crt", node_cert.pem()),
            ("node.key", node_key.serialize_pem()),
        ] {
            let path = dir.join(name);
            std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        }

        let mut clients = Vec::new();
        for role in ROLES {
            let mut params = CertificateParams::default();
            params
                .distinguished_name
                .push(DnType::CommonName, format!("{role} client"));
            params
                .distinguished_name
                .push(DnType::OrganizationName, role);
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
            let key = KeyPair::generate()?;
            let cert = params.signed_by(&key, &issuer)?;
            clients.push(Identity {
                cert: cert.pem(),
                key: key.serialize_pem(),
            });
        }
        Ok(Pki {
            ca: ca_cert.pem(),
            clients,
        })
    }

    /// The client identity for `role` (`"os:admin"`…).
    pub fn client(&self, role: &str) -> Option<&Identity> {
        ROLES
            .iter()
            .position(|r| *r == role)
            .map(|i| &self.clients[i])
    }
}
