//! A server on 127.0.0.1 over a temporary data directory, a repository made by the real
//! release tooling, and a raw HTTP/1.1 client (so hostile paths reach the server as
//! written, not normalized by a client library).

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use skerry_release::{AddImage, Expiries, KeySet, Repository};
use skerry_rollout::UnixTime;
use skerry_server::ServerConfig;

pub struct TestServer {
    pub addr: SocketAddr,
    pub data: tempfile::TempDir,
    pub keys: PathBuf,
    pub clock: Arc<AtomicU64>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), skerry_server::ServeError>>>,
}

pub const T0: u64 = 1_800_000_000;

/// Keys in their own directory (the release tooling's), a repository with `releases`
/// (board `pi`, each `(version, channel)`) in `DATA/repository`.
pub fn publish(data: &Path, keys_dir: &Path, releases: &[(&str, &str)], exp: &Expiries) {
    let keys = KeySet::generate(keys_dir, 1).unwrap();
    let repo = Repository::new(&data.join("repository"));
    skerry_release::init(&keys, &repo, 1, exp, SystemTime::now()).unwrap();
    for (i, (version, channel)) in releases.iter().enumerate() {
        let image = keys_dir.join(format!("image-{i}"));
        let bytes: Vec<u8> = (0..200_000u32)
            .map(|n| (n.wrapping_mul(2654435761).wrapping_add(i as u32) >> 13) as u8)
            .collect();
        std::fs::write(&image, bytes).unwrap();
        let add = AddImage {
            board: "pi",
            version,
            channel,
            image: &image,
            params: skerry_chunks::ChunkParams::DEFAULT,
            level: 3,
        };
        skerry_release::add_image(&keys, &repo, &add, exp, SystemTime::now()).unwrap();
    }
}

impl TestServer {
    /// Starts a server; `prepare` may fill the data directory first.
    pub async fn start(
        prepare: impl FnOnce(&Path, &Path),
        tune: impl FnOnce(&mut ServerConfig),
    ) -> Self {
        let data = tempfile::tempdir().unwrap();
        let keys = data.path().join("offline-keys");
        prepare(&data.path().join("srv"), &keys);
        let clock = Arc::new(AtomicU64::new(T0));
        let mut config = ServerConfig::new(data.path().join("srv"));
        let c = Arc::clone(&clock);
        config.clock = Arc::new(move || UnixTime(c.load(Ordering::SeqCst)));
        tune(&mut config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(skerry_server::serve(listener, config, async {
            let _ = stopped.await;
        }));
        // Ready when /healthz answers.
        for _ in 0..200 {
            if tokio::task::spawn_blocking(move || get(addr, "/healthz", &[]).status == 200)
                .await
                .unwrap_or(false)
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        Self {
            addr,
            data,
            keys,
            clock,
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub fn srv(&self) -> PathBuf {
        self.data.path().join("srv")
    }

    /// The server's data directory and embedded database, as operator commands open them.
    pub fn db(&self) -> skerry_server::fleet_db::FleetDb {
        skerry_server::fleet_db::FleetDb::open(&self.srv(), None).unwrap()
    }

    pub fn set_time(&self, t: u64) {
        self.clock.store(t, Ordering::SeqCst);
    }

    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
    }
}

#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One request on its own connection; `target` is sent exactly as given.
pub fn request(addr: SocketAddr, method: &str, target: &str, headers: &[(&str, &str)]) -> Reply {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut req = format!("{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    stream.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("no end of headers");
    let head = String::from_utf8(raw[..split].to_vec()).unwrap();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    Reply {
        status,
        headers,
        body: raw[split + 4..].to_vec(),
    }
}

pub fn get(addr: SocketAddr, target: &str, headers: &[(&str, &str)]) -> Reply {
    request(addr, "GET", target, headers)
}
