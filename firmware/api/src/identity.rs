//! Reading a client's role from the certificate it presented in the TLS handshake.
//!
//! rustls has already checked the chain against the machine CA and its validity
//! dates; here only the leaf's subject is read. A certificate may carry several
//! Organization values: the highest role among them counts and other values are
//! ignored (they may mean something to another system).

use x509_parser::prelude::{FromDer, X509Certificate};

use crate::roles::Role;

/// Why a client's certificate gives it no role.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IdentityError {
    /// The connection carried no client certificate (only possible if TLS was set up
    /// without requiring one).
    #[error("no client certificate was presented")]
    NoCertificate,
    /// The leaf certificate could not be parsed.
    #[error("the client certificate could not be parsed: {reason}")]
    Unparsable {
        /// What the parser said.
        reason: String,
    },
    /// No subject Organization names a role.
    #[error(
        "the client certificate's subject ({subject}) names no role: its Organization must be os:admin, os:operator or os:reader"
    )]
    NoRole {
        /// The subject as text.
        subject: String,
    },
}

/// The role the leaf certificate (DER) names.
pub fn role_of_certificate(leaf_der: &[u8]) -> Result<Role, IdentityError> {
    let (_, cert) = X509Certificate::from_der(leaf_der).map_err(|e| IdentityError::Unparsable {
        reason: e.to_string(),
    })?;
    let subject = cert.subject();
    subject
        .iter_organization()
        .filter_map(|attr| attr.as_str().ok())
        .filter_map(Role::from_organization)
        .max()
        .ok_or_else(|| IdentityError::NoRole {
            subject: subject.to_string(),
        })
}

/// The role of a peer's certificate chain as tonic hands it over (leaf first).
pub fn role_of_peer(chain: Option<&[impl AsRef<[u8]>]>) -> Result<Role, IdentityError> {
    let leaf = chain
        .and_then(|c| c.first())
        .ok_or(IdentityError::NoCertificate)?;
    role_of_certificate(leaf.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed certificate whose subject carries each of `orgs` as an
    /// Organization attribute (rcgen keeps one value per attribute type, so the second
    /// one goes in under the same OID spelled as a custom type).
    fn cert_with_orgs(orgs: &[&str]) -> Vec<u8> {
        assert!(orgs.len() <= 2);
        let mut params = rcgen::CertificateParams::new(vec!["client".into()]).unwrap();
        let types = [
            rcgen::DnType::OrganizationName,
            rcgen::DnType::CustomDnType(vec![2, 5, 4, 10]),
        ];
        for (ty, org) in types.into_iter().zip(orgs) {
            params.distinguished_name.push(ty, *org);
        }
        let key = rcgen::KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn the_highest_named_role_counts_whatever_the_order() {
        for orgs in [["os:reader", "os:operator"], ["os:operator", "os:reader"]] {
            let der = cert_with_orgs(&orgs);
            assert_eq!(role_of_certificate(&der), Ok(Role::Operator), "{orgs:?}");
        }
    }

    #[test]
    fn organization_values_that_name_no_role_are_ignored() {
        let der = cert_with_orgs(&["acme", "os:reader"]);
        assert_eq!(role_of_certificate(&der), Ok(Role::Reader));
    }

    #[test]
    fn a_certificate_without_a_role_names_its_subject() {
        let der = cert_with_orgs(&["acme"]);
        let err = role_of_certificate(&der).unwrap_err();
        assert!(matches!(err, IdentityError::NoRole { .. }), "{err}");
        assert!(err.to_string().contains("acme"), "{err}");
    }

    #[test]
    fn garbage_and_missing_certificates_are_errors_not_panics() {
        assert!(matches!(
            role_of_certificate(b"\x30\x03\x02\x01"),
            Err(IdentityError::Unparsable { .. })
        ));
        let none: Option<&[Vec<u8>]> = None;
        assert_eq!(role_of_peer(none), Err(IdentityError::NoCertificate));
        let empty: &[Vec<u8>] = &[];
        assert_eq!(role_of_peer(Some(empty)), Err(IdentityError::NoCertificate));
    }
}
