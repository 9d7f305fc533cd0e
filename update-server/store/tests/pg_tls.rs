//! TLS to a real PostgreSQL that takes TCP connections over TLS only, its certificate
//! issued for `db.example` by a test CA: each libpq `sslmode` behaves as libpq's does,
//! a wrong CA, a wrong name and a plain connection are refused, naming why.

#[path = "support/pg_cluster.rs"]
mod pg_cluster;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use skerry_fleet_store::{FleetStore, PgStore};

struct Ca {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

fn ca(name: &str) -> Ca {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    let cert = params.self_signed(&key).unwrap();
    Ca {
        pem: cert.pem(),
        issuer: Issuer::new(params, key),
    }
}

fn server_cert(ca: &Ca, name: &str) -> (String, String) {
    let key = KeyPair::generate().unwrap();
    let params = CertificateParams::new(vec![name.to_string()]).unwrap();
    let cert = params.signed_by(&key, &ca.issuer).unwrap();
    (cert.pem(), key.serialize_pem())
}

#[test]
fn each_sslmode_connects_or_is_refused_as_libpq_s_would_be() {
    let ours = ca("skerry test database CA");
    let stranger = ca("someone else");
    let (cert, key) = server_cert(&ours, "db.example");
    let cluster = pg_cluster::PgCluster::start_with_tls(&cert, &key);
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &ours.pem).unwrap();
    let stranger_file = dir.path().join("stranger.pem");
    std::fs::write(&stranger_file, &stranger.pem).unwrap();
    let not_pem = dir.path().join("not.pem");
    std::fs::write(&not_pem, "just text\n").unwrap();
    let url = cluster.database();
    let db = url.rsplit('/').next().unwrap();
    let port = cluster.port;
    let named = format!("host=db.example hostaddr=127.0.0.1 port={port} user=postgres dbname={db}");

    // Connects, migrates and stores through the verified link.
    let full = format!(
        "{named} sslmode=verify-full sslrootcert='{}'",
        ca_file.display()
    );
    let store = PgStore::open(&full).unwrap_or_else(|e| panic!("{}", pg_cluster::error_chain(&e)));
    assert!(store.device("nobody").unwrap().is_none());
    drop(store);
    for ok in [
        format!("{url}?sslmode=verify-ca&sslrootcert={}", ca_file.display()),
        format!("{url}?sslmode=require"),
        url.clone(),
    ] {
        PgStore::open(&ok).unwrap_or_else(|e| panic!("{ok}: {}", pg_cluster::error_chain(&e)));
    }

    let refused = |s: String| match PgStore::open(&s) {
        Ok(_) => panic!("{s} connected"),
        Err(e) => pg_cluster::error_chain(&e),
    };
    // The certificate names db.example, not 127.0.0.1.
    let e = refused(format!(
        "{url}?sslmode=verify-full&sslrootcert={}",
        ca_file.display()
    ));
    assert!(e.contains("not valid for name \"127.0.0.1\""), "{e}");
    for wrong in [stranger_file.display().to_string(), "system".into()] {
        let e = refused(format!("{named} sslmode=verify-full sslrootcert={wrong}"));
        assert!(e.contains("UnknownIssuer"), "{e}");
    }
    let e = refused(format!(
        "{url}?sslmode=require&sslrootcert={}",
        stranger_file.display()
    ));
    assert!(e.contains("UnknownIssuer"), "{e}");
    // The public roots: verify-full by default, weaker modes refused (libpq 16).
    let e = refused(format!("{named} sslrootcert=system"));
    assert!(e.contains("UnknownIssuer"), "{e}");
    let e = refused(format!("{url}?sslmode=require&sslrootcert=system"));
    assert!(e.contains("needs sslmode=verify-full"), "{e}");
    // Without TLS the server's pg_hba.conf turns the connection away.
    let e = refused(format!("{url}?sslmode=disable"));
    assert!(e.contains("pg_hba.conf"), "{e}");
    // Settings refused before any connection, naming the setting.
    let e = refused(format!("{url}?sslmode=verify-full"));
    assert!(e.contains("sslrootcert=FILE"), "{e}");
    let e = refused(format!(
        "{url}?sslmode=require&sslrootcert={}",
        not_pem.display()
    ));
    assert!(e.contains("holds no PEM certificate"), "{e}");
    let e = refused(format!(
        "{url}?sslmode=require&sslrootcert={}",
        dir.path().display()
    ));
    assert!(e.contains("reading sslrootcert"), "{e}");
}

#[test]
fn a_server_without_tls_is_refused_when_tls_is_required() {
    let cluster = pg_cluster::PgCluster::start();
    let url = cluster.database();
    PgStore::open(&url).unwrap();
    let e = match PgStore::open(&format!("{url}?sslmode=require")) {
        Ok(_) => panic!("connected without TLS"),
        Err(e) => pg_cluster::error_chain(&e),
    };
    assert!(e.contains("does not support TLS"), "{e}");
}

/// A client certificate for the database user `user`, issued by `ca`.
fn client_cert(ca: &Ca, user: &str) -> (String, String) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, user);
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let cert = params.signed_by(&key, &ca.issuer).unwrap();
    (cert.pem(), key.serialize_pem())
}

/// Writes a PEM file with `mode`.
fn pem_file(dir: &std::path::Path, name: &str, pem: &str, mode: u32) -> String {
    let path = dir.join(name);
    std::fs::write(&path, pem).unwrap();
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(mode)).unwrap();
    path.display().to_string()
}

#[test]
fn a_client_certificate_logs_in_where_the_server_asks_for_one() {
    let server_ca = ca("skerry test database CA");
    let client_ca = ca("skerry test client CA");
    let stranger = ca("someone else");
    let (cert, key) = server_cert(&server_ca, "db.example");
    let cluster = pg_cluster::PgCluster::start_with_client_certs(&cert, &key, &client_ca.pem);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let root = pem_file(d, "ca.pem", &server_ca.pem, 0o644);
    let (c, k) = client_cert(&client_ca, "postgres");
    let (good_crt, good_key) = (
        pem_file(d, "c.crt", &c, 0o644),
        pem_file(d, "c.key", &k, 0o600),
    );
    let (c, k) = client_cert(&stranger, "postgres");
    let (bad_crt, bad_key) = (
        pem_file(d, "s.crt", &c, 0o644),
        pem_file(d, "s.key", &k, 0o600),
    );
    let (c, _) = client_cert(&client_ca, "postgres");
    let other_crt = pem_file(d, "o.crt", &c, 0o644);
    let open_key = pem_file(d, "open.key", &k, 0o644);
    let url = cluster.database();
    let with = |extra: &str| format!("{url}?sslmode=verify-ca&sslrootcert={root}{extra}");

    // The certificate the server's client CA issued for the user logs in and stores.
    let good = with(&format!("&sslcert={good_crt}&sslkey={good_key}"));
    let store = PgStore::open(&good)
        .unwrap_or_else(|e| panic!("{}\n{}", pg_cluster::error_chain(&e), cluster.log()));
    assert!(store.device("nobody").unwrap().is_none());
    drop(store);

    let refused = |s: String| match PgStore::open(&s) {
        Ok(_) => panic!("{s} connected"),
        Err(e) => pg_cluster::error_chain(&e),
    };
    // No certificate, or one from another CA: the server turns it away.
    let e = refused(with(""));
    assert!(e.contains("requires a valid client certificate"), "{e}");
    let e = refused(with(&format!("&sslcert={bad_crt}&sslkey={bad_key}")));
    assert!(e.contains("UnknownCA"), "{e}");
    // Refused before connecting, naming the setting.
    let e = refused(with(&format!("&sslcert={good_crt}")));
    assert!(e.contains("sslkey is missing"), "{e}");
    let e = refused(with(&format!("&sslcert={good_crt}&sslkey={open_key}")));
    assert!(e.contains("sslkey") && e.contains("chmod 600"), "{e}");
    let e = refused(with(&format!("&sslcert={other_crt}&sslkey={good_key}")));
    assert!(e.contains("does not go with sslcert"), "{e}");
    let e = refused(with(&format!("&sslcert={root}x&sslkey={good_key}")));
    assert!(e.contains("sslcert") && e.contains("cannot read"), "{e}");
    let e = refused(with(&format!("&sslcert={good_key}&sslkey={good_key}")));
    assert!(
        e.contains("sslcert") && e.contains("no PEM certificate"),
        "{e}"
    );
}
