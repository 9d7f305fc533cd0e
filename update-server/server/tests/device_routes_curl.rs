//! The device HTTP routes over TLS with Debian's `curl` as the client (its own OpenSSL,
//! not our rustls): `ca.pem` fetched without trust and checked against the join URL's
//! `ca=sha256:…` that `token create --url` prints, then used as the only root; console
//! logs and events by client certificate (`--cert/--key`) and by join token; the wrong
//! device, a certificate from another CA, a revoked device, bad and oversized bodies.

mod tls_support;

use std::path::Path;
use std::process::Command;

use skerry_fleet_store::{EnrollmentStore as _, LogKind, SqliteStore};
use skerry_server::pki::fingerprint;
use tls_support::*;

/// A curl run: the HTTP status (0 when no HTTP answer came), the body, curl's exit code.
#[derive(Debug)]
struct Curl {
    status: u16,
    body: String,
    exit: i32,
    /// Shown in failure messages.
    #[allow(dead_code)]
    stderr: String,
}

fn curl(port: u16, args: &[&str], path: &str) -> Curl {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "20", "--resolve"])
        .arg(format!("localhost:{port}:127.0.0.1"))
        .args(["-w", "\n%{http_code}"])
        .args(args)
        .arg(format!("https://localhost:{port}{path}"))
        .output()
        .unwrap_or_else(|e| {
            panic!("running curl ({e}): install Debian's curl (scripts/deps/base.apt)")
        });
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = stdout.rsplit_once('\n').unwrap_or(("", &stdout));
    Curl {
        status: code.trim().parse().unwrap_or(0),
        body: body.to_string(),
        exit: out.status.code().unwrap_or(-1),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn lines(srv: &Path, device: &str, kind: LogKind) -> Vec<String> {
    SqliteStore::open(&srv.join("fleet.db"))
        .unwrap()
        .device_log(device, kind)
        .unwrap()
        .into_iter()
        .map(|e| e.text)
        .collect()
}

/// The DER of the one certificate in `pem`.
fn pem_der(pem: &str) -> Vec<u8> {
    let (_, block) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).unwrap();
    assert_eq!(block.label, "CERTIFICATE");
    block.contents
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_with_only_a_join_url_pins_the_ca_and_sends_logs_with_its_certificate() {
    let s = TlsServer::start(true, |_| {}).await;
    let port = s.tls_port();
    // The operator's command prints the join URL as a kernel argument.
    let out = Command::new(env!("CARGO_BIN_EXE_skerry-server"))
        .args(["token", "create", "--uses", "2", "--data"])
        .arg(s.srv())
        .args(["--url", &format!("https://localhost:{port}")])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8(out.stdout).unwrap();
    let join = printed
        .lines()
        .find_map(|l| l.strip_prefix("skerry.join="))
        .unwrap_or_else(|| panic!("no skerry.join= line in {printed:?}"));
    let (base, query) = join.split_once("/?").unwrap();
    assert_eq!(base, format!("https://localhost:{port}"));
    let token = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("token="))
        .unwrap();
    let pinned = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("ca="))
        .unwrap();
    assert_eq!(printed.lines().next(), Some(token));

    // Trust on first use, checked: fetch ca.pem without verifying, compare its hash.
    let fetched = tokio::task::spawn_blocking(move || curl(port, &["-k"], "/device/v1/ca.pem"))
        .await
        .unwrap();
    assert_eq!(fetched.status, 200, "{fetched:?}");
    let der = pem_der(&fetched.body);
    assert_eq!(fingerprint(&der), pinned);
    let work = tempfile::tempdir().unwrap();
    let ca = work.path().join("server-ca.pem");
    std::fs::write(&ca, &fetched.body).unwrap();

    let dev = s.enroll(token, "dev-1").await.unwrap();
    let (crt, key) = dev.write(work.path(), "dev-1");
    let (ca, crt, key) = (
        ca.display().to_string(),
        crt.display().to_string(),
        key.display().to_string(),
    );
    let with_cert = [
        "--cacert",
        &ca,
        "--cert",
        &crt,
        "--key",
        &key,
        "--data-binary",
    ];
    let run = |extra: Vec<String>, path: &'static str| {
        let args: Vec<String> = with_cert
            .iter()
            .map(|a| a.to_string())
            .chain(extra)
            .collect();
        tokio::task::block_in_place(|| {
            curl(
                port,
                &args.iter().map(String::as_str).collect::<Vec<_>>(),
                path,
            )
        })
    };
    // HTTP/2 and HTTP/1.1 both (ALPN offers both).
    let r = run(
        vec!["booting\nkernel: oops\npartial".into()],
        "/device/v1/logs",
    );
    assert_eq!(r.status, 204, "{r:?}");
    let r = run(vec!["again".into(), "--http1.1".into()], "/device/v1/logs");
    assert_eq!(r.status, 204, "{r:?}");
    assert_eq!(
        lines(&s.srv(), "dev-1", LogKind::Console),
        ["booting", "kernel: oops", "partial", "again"]
    );
    let r = run(
        vec![r#"{"kind":"boot","detail":"slot a"}"#.into()],
        "/device/v1/events",
    );
    assert_eq!(r.status, 204, "{r:?}");
    assert_eq!(lines(&s.srv(), "dev-1", LogKind::Events).len(), 1);
    // One bad line refuses the lot, naming it.
    let r = run(
        vec!["{\"kind\":\"a\"}\n[1,2]\n".into()],
        "/device/v1/events",
    );
    assert_eq!(r.status, 400, "{r:?}");
    assert!(r.body.contains("line 2"), "{r:?}");
    assert_eq!(lines(&s.srv(), "dev-1", LogKind::Events).len(), 1);
    // The certificate says dev-1; claiming dev-2 is refused.
    let r = run(
        vec!["x".into(), "-H".into(), "Skerry-Device-Id: dev-2".into()],
        "/device/v1/logs",
    );
    assert_eq!(r.status, 403, "{r:?}");
    // Over the line limit.
    let many = "l\n".repeat(513);
    let r = run(vec![many], "/device/v1/logs");
    assert_eq!(r.status, 413, "{r:?}");
    // Only POST.
    let r = tokio::task::block_in_place(|| {
        curl(
            port,
            &["--cacert", &ca, "--cert", &crt, "--key", &key],
            "/device/v1/logs",
        )
    });
    assert_eq!(r.status, 405, "{r:?}");

    // A device that never enrolled sends its log with the join token.
    let bearer = format!("Authorization: Bearer {token}");
    let r = tokio::task::block_in_place(|| {
        curl(
            port,
            &[
                "--cacert",
                &ca,
                "-H",
                &bearer,
                "-H",
                "Skerry-Device-Id: dev-9",
                "--data-binary",
                "no api",
            ],
            "/device/v1/logs",
        )
    });
    assert_eq!(r.status, 204, "{r:?}");
    assert_eq!(lines(&s.srv(), "dev-9", LogKind::Console), ["no api"]);
    // An enrolled one must use its certificate; no device id, or no credentials: 401.
    for (args, status) in [
        (
            vec!["-H", bearer.as_str(), "-H", "Skerry-Device-Id: dev-1"],
            403,
        ),
        (vec!["-H", bearer.as_str()], 401),
        (vec![], 401),
    ] {
        let mut all = vec!["--cacert", ca.as_str(), "--data-binary", "x"];
        all.extend(args);
        let r = tokio::task::block_in_place(|| curl(port, &all, "/device/v1/logs"));
        assert_eq!(r.status, status, "{all:?}: {r:?}");
    }

    // Revoked: refused from the next request on.
    skerry_server::enroll_admin::revoke_device(&s.db(), "dev-1", unix_now()).unwrap();
    let r = run(vec!["after".into()], "/device/v1/logs");
    assert_eq!(r.status, 403, "{r:?}");
    assert!(r.body.contains("revoked"), "{r:?}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_from_another_ca_gets_no_connection_and_plaintext_takes_no_logs() {
    let s = TlsServer::start(true, |_| {}).await;
    let port = s.tls_port();
    let work = tempfile::tempdir().unwrap();
    let ca = work.path().join("server-ca.pem");
    std::fs::write(&ca, s.server_ca_pem()).unwrap();
    let (crt, key) = stranger_device("dev-s").write(work.path(), "dev-s");
    let args = [
        "--cacert".to_string(),
        ca.display().to_string(),
        "--cert".into(),
        crt.display().to_string(),
        "--key".into(),
        key.display().to_string(),
        "--data-binary".into(),
        "x".into(),
    ];
    let r = tokio::task::block_in_place(|| {
        curl(
            port,
            &args.iter().map(String::as_str).collect::<Vec<_>>(),
            "/device/v1/logs",
        )
    });
    assert_eq!(r.status, 0, "{r:?}");
    assert_ne!(r.exit, 0, "{r:?}");
    // The same request without that certificate reaches the server (and is 401): the
    // certificate is what failed the connection.
    let r = tokio::task::block_in_place(|| {
        curl(
            port,
            &args
                .iter()
                .skip(6)
                .map(String::as_str)
                .chain(["--cacert", &args[1]])
                .collect::<Vec<_>>(),
            "/device/v1/logs",
        )
    });
    assert_eq!(r.status, 401, "{r:?}");
    // A server CA the device did not pin is refused by the device (curl) itself.
    let other = work.path().join("other-ca.pem");
    std::fs::write(&other, stranger_device("x").cert_pem).unwrap();
    let r = tokio::task::block_in_place(|| {
        curl(
            port,
            &["--cacert", &other.display().to_string()],
            "/device/v1/ca.pem",
        )
    });
    assert_eq!((r.status, r.exit), (0, 60), "{r:?}");

    // The plaintext port takes no logs (a token must not travel in the clear).
    let plain = s.plain;
    let out = tokio::task::block_in_place(|| {
        Command::new("curl")
            .args([
                "-sS",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "--data-binary",
                "x",
            ])
            .arg(format!("http://{plain}/device/v1/logs"))
            .output()
            .unwrap()
    });
    assert_eq!(String::from_utf8_lossy(&out.stdout), "403");
    s.stop().await;
}
