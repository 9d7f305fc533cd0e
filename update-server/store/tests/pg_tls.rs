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
        let e = refused(format!("{url}?sslmode=require&sslrootcert={wrong}"));
        assert!(e.contains("UnknownIssuer"), "{e}");
    }
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
