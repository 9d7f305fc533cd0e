//! A throwaway machine PKI for a simulated board's daemon: the CA, the node's server
//! certificate for 127.0.0.1, and one client certificate per role, laid out as
//! `skerryctl gen secrets` lays them out (`ca.crt`, `node.crt`, `node.key`). The
//! certificates come from skerry-api's test PKI (`skerry_api::testing::TestCa`).

use std::path::Path;

use anyhow::Context as _;
use skerry_api::testing::{Pem, TestCa};

/// The roles a client certificate can name, as the subject Organization.
pub const ROLES: [&str; 3] = ["os:admin", "os:operator", "os:reader"];

/// A certificate and its key, PEM.
pub type Identity = Pem;

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
        let ca = TestCa::new("simulated board CA")?;
        let node = ca.node()?;
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        for (name, text) in [
            ("ca.crt", &ca.cert_pem),
            ("node.crt", &node.cert),
            ("node.key", &node.key),
        ] {
            let path = dir.join(name);
            std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        }
        let clients = ROLES
            .iter()
            .map(|role| ca.client(&[role]))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Pki {
            ca: ca.cert_pem,
            clients,
        })
    }

    /// Writes each role's client certificate and key into `dir` (`client-os-admin.crt`…),
    /// so that a developer can talk to a running board by hand (`skerryctl --config`).
    /// Never into a directory an image is built from: these are operators' keys.
    pub fn write_clients(&self, dir: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        for (role, client) in ROLES.iter().zip(&self.clients) {
            let stem = format!("client-{}", role.replace(':', "-"));
            for (ext, text) in [("crt", &client.cert), ("key", &client.key)] {
                let path = dir.join(format!("{stem}.{ext}"));
                std::fs::write(&path, text)
                    .with_context(|| format!("writing {}", path.display()))?;
            }
        }
        Ok(())
    }

    /// The client identity for `role` (`"os:admin"`…).
    pub fn client(&self, role: &str) -> Option<&Identity> {
        ROLES
            .iter()
            .position(|r| *r == role)
            .map(|i| &self.clients[i])
    }
}
