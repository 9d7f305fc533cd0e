//! The PKI made at first start: keys `0600`, the CAs kept across starts (so a pinned
//! fingerprint stays true), and device certificates issued only from a CSR that names
//! exactly the enrolling device with a self-signature that verifies.

use std::os::unix::fs::PermissionsExt as _;
use std::time::SystemTime;

use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, SanType};
use skerry_server::pki::{device_of, fingerprint, CsrError, Pki, MAX_CSR_BYTES};

fn csr(cn: &str, sans: Vec<SanType>, alg: &'static rcgen::SignatureAlgorithm) -> Vec<u8> {
    let key = KeyPair::generate_for(alg).unwrap();
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    p.distinguished_name = dn;
    p.subject_alt_names = sans;
    p.serialize_request(&key).unwrap().der().to_vec()
}

fn pki(dir: &std::path::Path) -> Pki {
    Pki::load_or_create(
        dir,
        &["localhost".to_string(), "127.0.0.1".to_string()],
        SystemTime::now(),
    )
    .unwrap()
}

#[test]
fn made_once_with_private_keys_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let first = pki(dir.path());
    for key in ["server-ca.key", "device-ca.key", "server.key"] {
        let mode = std::fs::metadata(dir.path().join(key))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{key}");
    }
    let again = pki(dir.path());
    assert_eq!(
        fingerprint(first.server_ca_der()),
        fingerprint(again.server_ca_der())
    );
    assert_eq!(first.device_ca_der(), again.device_ca_der());
    assert_ne!(
        first.server_ca_der(),
        first.device_ca_der(),
        "two separate CAs"
    );
    assert!(fingerprint(first.server_ca_der()).starts_with("sha256:"));
    assert_eq!(fingerprint(first.server_ca_der()).len(), 7 + 64);
}

/// Instances sharing one data directory may start at the same moment: one makes the
/// CAs, the others load them, and none reads a half-written key or loses a rename.
#[test]
fn instances_starting_at_once_on_one_directory_agree_on_the_cas() {
    for _round in 0..8 {
        let dir = tempfile::tempdir().unwrap();
        let barrier = std::sync::Barrier::new(6);
        let cas: Vec<(Vec<u8>, Vec<u8>)> = std::thread::scope(|s| {
            let starts: Vec<_> = (0..6)
                .map(|_| {
                    s.spawn(|| {
                        barrier.wait();
                        let p = Pki::load_or_create(
                            dir.path(),
                            &["localhost".to_string()],
                            SystemTime::now(),
                        )
                        .unwrap_or_else(|e| panic!("a start failed: {e}"));
                        (p.server_ca_der().to_vec(), p.device_ca_der().to_vec())
                    })
                })
                .collect();
            starts.into_iter().map(|t| t.join().unwrap()).collect()
        });
        assert!(
            cas.windows(2).all(|w| w[0] == w[1]),
            "the starts made different CAs"
        );
        assert_eq!(pki(dir.path()).device_ca_der(), cas[0].1.as_slice());
    }
}

#[test]
fn a_device_certificate_names_the_device_and_chains_to_the_device_ca() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(dir.path());
    let request = csr("dev-1", vec![], &rcgen::PKCS_ECDSA_P256_SHA256);
    let issued = pki
        .issue_device("dev-1", &request, SystemTime::now())
        .unwrap();
    let (id, serial) = device_of(&issued.der).unwrap();
    assert_eq!(id, "dev-1");
    assert_eq!(serial, issued.serial);
    let (_, cert) = x509_parser::parse_x509_certificate(&issued.der).unwrap();
    let (_, ca) = x509_parser::parse_x509_certificate(pki.device_ca_der()).unwrap();
    let (_, server_ca) = x509_parser::parse_x509_certificate(pki.server_ca_der()).unwrap();
    cert.verify_signature(Some(ca.public_key())).unwrap();
    assert!(cert.verify_signature(Some(server_ca.public_key())).is_err());
    // Two enrollments of the same device get different serials.
    let again = pki
        .issue_device("dev-1", &request, SystemTime::now())
        .unwrap();
    assert_ne!(again.serial, issued.serial);
    // Ed25519 keys are accepted too, with the device's own URI SAN.
    let uri = SanType::URI("urn:skerry:device:dev-2".try_into().unwrap());
    pki.issue_device(
        "dev-2",
        &csr("dev-2", vec![uri], &rcgen::PKCS_ED25519),
        SystemTime::now(),
    )
    .unwrap();
}

#[test]
fn csrs_that_do_not_name_exactly_this_device_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(dir.path());
    let now = SystemTime::now();
    assert_eq!(
        pki.issue_device(
            "dev-1",
            &csr("dev-2", vec![], &rcgen::PKCS_ECDSA_P256_SHA256),
            now
        ),
        Err(CsrError::Subject {
            expected: "dev-1".into()
        })
    );
    let other = SanType::URI("urn:skerry:device:dev-9".try_into().unwrap());
    assert_eq!(
        pki.issue_device(
            "dev-1",
            &csr("dev-1", vec![other], &rcgen::PKCS_ECDSA_P256_SHA256),
            now
        ),
        Err(CsrError::AltName {
            expected: "dev-1".into()
        })
    );
    let dns = SanType::DnsName("server.example".try_into().unwrap());
    assert!(matches!(
        pki.issue_device(
            "dev-1",
            &csr("dev-1", vec![dns], &rcgen::PKCS_ECDSA_P256_SHA256),
            now
        ),
        Err(CsrError::AltName { .. })
    ));
    assert_eq!(
        pki.issue_device(
            "dev-1",
            &csr("dev-1", vec![], &rcgen::PKCS_ECDSA_P384_SHA384),
            now
        ),
        Err(CsrError::KeyType)
    );
}

#[test]
fn hostile_csrs_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(dir.path());
    let now = SystemTime::now();
    assert!(matches!(
        pki.issue_device("d", b"not a csr", now),
        Err(CsrError::Unparsable(_))
    ));
    assert!(matches!(
        pki.issue_device("d", &[], now),
        Err(CsrError::Unparsable(_))
    ));
    assert_eq!(
        pki.issue_device("d", &vec![0x30; MAX_CSR_BYTES + 1], now),
        Err(CsrError::TooLarge(MAX_CSR_BYTES + 1))
    );
    // A flipped bit in the signed part: the self-signature no longer verifies.
    let mut request = csr("d", vec![], &rcgen::PKCS_ECDSA_P256_SHA256);
    let at = request.len() / 2;
    request[at] ^= 0x01;
    assert!(matches!(
        pki.issue_device("d", &request, now),
        Err(CsrError::Unparsable(_))
    ));
    // Truncated at every length: refused, never a panic.
    let good = csr("d", vec![], &rcgen::PKCS_ECDSA_P256_SHA256);
    for n in 0..good.len() {
        assert!(pki.issue_device("d", &good[..n], now).is_err());
    }
}
