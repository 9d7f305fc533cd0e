//! A throwaway PostgreSQL cluster for tests: `initdb` in a temporary directory (as the
//! `postgres` OS user when the tests run as root, since root cannot run PostgreSQL),
//! started on 127.0.0.1 at a free port with its socket in the same directory, one
//! database per test (`createdb`), and stopped by its postmaster PID on drop. Shared by
//! the store's and the server's tests. Missing binaries fail
//! the test naming the package to install.

#![allow(dead_code)]

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

pub struct PgCluster {
    dir: tempfile::TempDir,
    pub port: u16,
    /// Set when the cluster runs as the `postgres` user.
    run_as: Option<&'static str>,
    pid: u32,
    databases: AtomicU32,
}

fn bin(name: &str) -> PathBuf {
    let path = Path::new(PG_BIN).join(name);
    assert!(
        path.exists(),
        "{} is missing: run scripts/install-deps (Debian package postgresql, listed in scripts/deps/postgres.apt)",
        path.display()
    );
    path
}

fn run(run_as: Option<&str>, program: &Path, args: &[&str]) {
    let mut cmd = match run_as {
        Some(user) => {
            let mut c = Command::new("runuser");
            c.args(["-u", user, "--"]).arg(program);
            c
        }
        None => Command::new(program),
    };
    let out = cmd
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()));
    assert!(
        out.status.success(),
        "{} {args:?} failed: {}{}",
        program.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl PgCluster {
    /// Creates and starts a cluster; ready when it accepts connections.
    pub fn start() -> Self {
        Self::start_with(None)
    }

    /// A cluster that takes TCP connections over TLS only (`hostssl` in `pg_hba.conf`,
    /// everything else rejected), presenting this certificate and key.
    pub fn start_with_tls(cert_pem: &str, key_pem: &str) -> Self {
        Self::start_with(Some((cert_pem, key_pem, None)))
    }

    /// As [`start_with_tls`](Self::start_with_tls), and TCP clients authenticate by a
    /// client certificate issued by `client_ca_pem` whose CN is the user name (`cert`
    /// in `pg_hba.conf`).
    pub fn start_with_client_certs(cert_pem: &str, key_pem: &str, client_ca_pem: &str) -> Self {
        Self::start_with(Some((cert_pem, key_pem, Some(client_ca_pem))))
    }

    fn start_with(tls: Option<(&str, &str, Option<&str>)>) -> Self {
        let initdb = bin("initdb");
        let pg_ctl = bin("pg_ctl");
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().metadata().unwrap().uid() == 0;
        let run_as = root.then_some("postgres");
        if root {
            let id = |flag| {
                let out = Command::new("id")
                    .args([flag, "postgres"])
                    .output()
                    .unwrap();
                assert!(
                    out.status.success(),
                    "no postgres user: run scripts/install-deps (package postgresql)"
                );
                String::from_utf8_lossy(&out.stdout)
                    .trim()
                    .parse::<u32>()
                    .unwrap()
            };
            std::os::unix::fs::chown(dir.path(), Some(id("-u")), Some(id("-g"))).unwrap();
        }
        let data = dir.path().join("data");
        let data_s = data.to_str().unwrap().to_string();
        let sock = dir.path().to_str().unwrap().to_string();
        run(
            run_as,
            &initdb,
            &[
                "-D",
                &data_s,
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        let port = free_port();
        let log = dir.path().join("server.log");
        let mut opts = format!(
            "-k {sock} -p {port} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=60"
        );
        if let Some((cert, key, client_ca)) = tls {
            let owner = std::fs::metadata(&data).unwrap();
            let mut files = vec![("server.crt", cert), ("server.key", key)];
            files.extend(client_ca.map(|pem| ("client-ca.crt", pem)));
            for (name, pem) in files {
                let path = data.join(name);
                std::fs::write(&path, pem).unwrap();
                std::fs::set_permissions(
                    &path,
                    std::os::unix::fs::PermissionsExt::from_mode(0o600),
                )
                .unwrap();
                std::os::unix::fs::chown(&path, Some(owner.uid()), Some(owner.gid())).unwrap();
            }
            // Local socket connections stay trusted; TCP only over TLS, and with a client
            // CA only by a certificate it issued.
            let tcp = if client_ca.is_some() { "cert" } else { "trust" };
            std::fs::write(
                data.join("pg_hba.conf"),
                format!("local all all trust\nhostssl all all 127.0.0.1/32 {tcp}\nhost all all 0.0.0.0/0 reject\n"),
            )
            .unwrap();
            opts.push_str(" -c ssl=on");
            if client_ca.is_some() {
                opts.push_str(" -c ssl_ca_file=client-ca.crt");
            }
        }
        run(
            run_as,
            &pg_ctl,
            &[
                "-D",
                &data_s,
                "-l",
                log.to_str().unwrap(),
                "-o",
                &opts,
                "-w",
                "start",
            ],
        );
        let pid_file = std::fs::read_to_string(data.join("postmaster.pid")).unwrap();
        let pid = pid_file.lines().next().unwrap().trim().parse().unwrap();
        let cluster = Self {
            dir,
            port,
            run_as,
            pid,
            databases: AtomicU32::new(0),
        };
        // `pg_ctl -w` returned once the server accepts connections.
        cluster
    }

    /// The server's log so far (for a failure's message).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// A new empty database; its URL.
    pub fn database(&self) -> String {
        let name = format!("t{}", self.databases.fetch_add(1, Ordering::SeqCst));
        let port = self.port.to_string();
        // Over the cluster's own socket: TCP may need a client certificate.
        let sock = self.dir.path().to_str().unwrap();
        run(
            self.run_as,
            &bin("createdb"),
            &["-h", sock, "-p", &port, "-U", "postgres", &name],
        );
        self.url(&name)
    }
}

/// An error and its sources on one line, for matching on the reason.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        // The postmaster we started, by PID: SIGQUIT is PostgreSQL's immediate shutdown.
        let _ = Command::new("kill")
            .args(["-QUIT", &self.pid.to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Path::new(&format!("/proc/{}", self.pid)).exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
