//! nginx serving one static body over HTTP/2 (cleartext, or mutual TLS with the
//! server's own certificates): the ceiling for a check-in answer of the same size on
//! this machine.

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Nginx {
    pub addr: SocketAddr,
    child: Option<Child>,
}

const NGINX: &str = "/usr/sbin/nginx";

impl Nginx {
    pub fn start(dir: &Path, body_size: usize) -> Result<Self, String> {
        Self::start_with(dir, body_size, None)
    }

    /// Over TLS with the certificate and key of skerry-server's `pki` directory,
    /// requiring a client certificate from its device CA.
    pub fn start_tls(dir: &Path, body_size: usize, pki: &Path) -> Result<Self, String> {
        Self::start_with(dir, body_size, Some(pki))
    }

    fn start_with(dir: &Path, body_size: usize, pki: Option<&Path>) -> Result<Self, String> {
        if !Path::new(NGINX).exists() {
            return Err(format!(
                "{NGINX} is missing: run `scripts/install-deps bench` (Debian package nginx)"
            ));
        }
        std::fs::create_dir_all(dir.join("www")).map_err(|e| e.to_string())?;
        std::fs::create_dir_all(dir.join("logs")).map_err(|e| e.to_string())?;
        std::fs::write(dir.join("www/checkin"), vec![b'x'; body_size.max(1)])
            .map_err(|e| e.to_string())?;
        let port = free_port()?;
        let addr: SocketAddr = format!("127.0.0.1:{port}")
            .parse()
            .expect("literal address");
        let conf = format!(
            "daemon off;\nmaster_process on;\nworker_processes 2;\npid {d}/nginx.pid;\n\
             error_log {d}/logs/error.log warn;\nevents {{ worker_connections 4096; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {d}/tmp;\n  proxy_temp_path {d}/tmp;\n\
             fastcgi_temp_path {d}/tmp;\n  uwsgi_temp_path {d}/tmp;\n  scgi_temp_path {d}/tmp;\n\
             keepalive_requests 10000000;\n\
             server {{\n    listen {addr} {transport};\n{tls}    root {d}/www;\n    default_type application/grpc;\n  }}\n}}\n",
            d = dir.display(),
            transport = if pki.is_some() { "ssl http2" } else { "http2" },
            tls = match pki {
                Some(p) => format!(
                    "    ssl_certificate {p}/server.crt;\n    ssl_certificate_key {p}/server.key;\n    \
                     ssl_client_certificate {p}/device-ca.crt;\n    ssl_verify_client on;\n    \
                     ssl_protocols TLSv1.2 TLSv1.3;\n",
                    p = p.display()
                ),
                None => String::new(),
            }
        );
        std::fs::create_dir_all(dir.join("tmp")).map_err(|e| e.to_string())?;
        std::fs::write(dir.join("nginx.conf"), conf).map_err(|e| e.to_string())?;
        let child = Command::new(NGINX)
            .arg("-p")
            .arg(dir)
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("starting nginx: {e}"))?;
        let mut ng = Nginx {
            addr,
            child: Some(child),
        };
        let until = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(addr).is_err() {
            if Instant::now() > until {
                ng.stop();
                return Err(format!(
                    "nginx did not listen on {addr} within 10 s (see {}/logs/error.log)",
                    dir.display()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(ng)
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SIGQUIT: nginx's graceful stop of the master and its workers.
            signal(&c, rustix::process::Signal::QUIT);
            let _ = c.wait();
        }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        self.stop();
    }
}

pub fn free_port() -> Result<u16, String> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("no free port: {e}"))?;
    Ok(l.local_addr().map_err(|e| e.to_string())?.port())
}

/// Sends `sig` to the child we started (by its PID).
fn signal(child: &std::process::Child, sig: rustix::process::Signal) {
    if let Some(pid) = rustix::process::Pid::from_raw(child.id() as i32) {
        let _ = rustix::process::kill_process(pid, sig);
    }
}
