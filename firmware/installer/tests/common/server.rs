//! A static HTTP server for tests, with range requests and injected faults: connections
//! cut at random offsets, stalls, and wrong bytes. Binds 127.0.0.1:0.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use super::Rng;

/// Fault probabilities, in percent per response.
#[derive(Debug, Clone, Copy, Default)]
pub struct Faults {
    pub cut_percent: u64,
    pub stall_percent: u64,
    pub stall: Duration,
    /// Flip one byte of a response whose path ends in `.pack`.
    pub corrupt_pack_percent: u64,
    /// Flip one byte of any response.
    pub corrupt_any_percent: u64,
    /// Serve only the first N bytes of every `.pack` file (a truncated upload).
    pub truncate_packs_at: Option<u64>,
    /// Ignore `Range` headers and always send the whole file with `200`.
    pub ignore_ranges: bool,
    /// Answer `403 Forbidden` for a missing file, as S3 does.
    pub forbid_missing: bool,
    /// Answer the first N requests with this status (408, 429 or 503) and
    /// `Retry-After: retry_after` when given.
    pub busy_first: u64,
    pub busy_status: u16,
    pub retry_after: Option<u64>,
    pub seed: u64,
}

pub struct TestServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
    pub requests: Arc<AtomicU64>,
    /// Body bytes written to clients, per file suffix seen (what a counting proxy sees).
    pub body_bytes: Arc<AtomicU64>,
}

impl TestServer {
    pub fn start(root: PathBuf, faults: Faults) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(AtomicU64::new(0));
        let body_bytes = Arc::new(AtomicU64::new(0));
        let (stop2, requests2, body2) = (stop.clone(), requests.clone(), body_bytes.clone());
        let handle = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let n = requests2.fetch_add(1, Ordering::SeqCst);
                let root = root.clone();
                let body = body2.clone();
                let rng =
                    Rng((faults.seed.wrapping_mul(0x9e37_79b9) ^ n.wrapping_mul(0x85eb_ca6b)) | 1);
                std::thread::spawn(move || {
                    let _ = serve(conn, &root, faults, rng, n, &body);
                });
            }
        });
        Self {
            addr,
            stop,
            handle: Some(handle),
            requests,
            body_bytes,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

fn serve(
    conn: TcpStream,
    root: &std::path::Path,
    faults: Faults,
    mut rng: Rng,
    request: u64,
    body_bytes: &AtomicU64,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
    let mut range: Option<(u64, Option<u64>)> = None;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h == "\r\n" {
            break;
        }
        let lower = h.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("range: bytes=") {
            let (a, b) = v.trim().split_once('-').unwrap_or(("0", ""));
            range = Some((a.parse().unwrap_or(0), b.parse().ok()));
        }
    }
    let mut conn = conn;
    let rel = path.trim_start_matches('/');
    if rel.contains("..") {
        return conn.write_all(
            b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
    }
    if request < faults.busy_first {
        let after = faults
            .retry_after
            .map(|s| format!("Retry-After: {s}\r\n"))
            .unwrap_or_default();
        let head = format!(
            "HTTP/1.1 {} Busy\r\n{after}Content-Length: 0\r\nConnection: close\r\n\r\n",
            faults.busy_status
        );
        return conn.write_all(head.as_bytes());
    }
    let Ok(mut data) = std::fs::read(root.join(rel)) else {
        if faults.forbid_missing {
            return conn.write_all(
                b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
        }
        return conn.write_all(
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
    };
    let is_pack = rel.ends_with(".pack");
    if let (true, Some(n)) = (is_pack, faults.truncate_packs_at) {
        data.truncate(n as usize);
    }
    let total = data.len() as u64;
    if faults.ignore_ranges {
        range = None;
    }
    let (status, start, end) = match range {
        Some((a, b)) => {
            let end = b.map_or(total, |b| (b + 1).min(total));
            if a >= total || a >= end {
                return conn.write_all(format!("HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */{total}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").as_bytes());
            }
            (206, a, end)
        }
        None => (200, 0, total),
    };
    let mut body = data[start as usize..end as usize].to_vec();
    let len = body.len() as u64;
    let roll = |rng: &mut Rng, pct: u64| pct > 0 && rng.next() % 100 < pct;
    if !body.is_empty()
        && (roll(&mut rng, faults.corrupt_any_percent)
            || (is_pack && roll(&mut rng, faults.corrupt_pack_percent)))
    {
        let at = (rng.next() % len) as usize;
        body[at] ^= 0x40;
    }
    let cut_at = roll(&mut rng, faults.cut_percent).then(|| rng.next() % len.max(1));
    let stall_at = roll(&mut rng, faults.stall_percent).then(|| rng.next() % len.max(1));
    let mut head = format!(
        "HTTP/1.1 {status} {}\r\nContent-Length: {len}\r\nAccept-Ranges: bytes\r\nConnection: close\r\n",
        if status == 206 { "Partial Content" } else { "OK" }
    );
    if status == 206 {
        head += &format!("Content-Range: bytes {start}-{}/{total}\r\n", end - 1);
    }
    head += "\r\n";
    conn.write_all(head.as_bytes())?;
    let mut sent = 0u64;
    for piece in body.chunks(4096) {
        let next = sent + piece.len() as u64;
        if let Some(at) = stall_at.filter(|&at| at >= sent && at < next) {
            conn.write_all(&piece[..(at - sent) as usize])?;
            conn.flush()?;
            std::thread::sleep(faults.stall);
            return Ok(());
        }
        if let Some(at) = cut_at.filter(|&at| at >= sent && at < next) {
            conn.write_all(&piece[..(at - sent) as usize])?;
            return conn.shutdown(std::net::Shutdown::Both);
        }
        conn.write_all(piece)?;
        body_bytes.fetch_add(piece.len() as u64, Ordering::Relaxed);
        sent = next;
    }
    conn.flush()?;
    conn.shutdown(std::net::Shutdown::Write)
}
