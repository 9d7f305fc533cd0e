//! The release repository a board fetches from: a static HTTP server on 127.0.0.1
//! serving a signed repository's directory, with range requests (the installer resumes
//! with them) and the faults scenarios inject into it: the repository goes down, a
//! download is cut after N bytes of image packs (and the repository stays down), or a
//! download is held still after N bytes so a power cut lands mid-install.
//!
//! Requests are bounded (one request line and at most [`MAX_HEADERS`] header lines of at
//! most [`MAX_LINE`] bytes); paths with `..` or outside the directory are refused.

use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context as _;

/// The longest request or header line read.
pub const MAX_LINE: usize = 8 << 10;
/// The most header lines read per request.
pub const MAX_HEADERS: usize = 64;

/// What the repository does now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RepositoryFault {
    /// Serves everything.
    None,
    /// Unreachable: every connection is closed before an answer.
    Down,
    /// Serves `n` more bytes of image packs, then drops every connection and is
    /// [`RepositoryFault::Down`] until told otherwise.
    CutAfter(u64),
    /// Serves `n` more bytes of image packs, then holds every pack download still
    /// (sending nothing, the connection open) until told otherwise. When the first pack
    /// request after the fault was set asks for fewer than `2n` bytes (a delta install
    /// fetching only the chunks the device lacks), the hold comes after half of that
    /// request instead, so it always lands inside the download, never after its end.
    HoldAfter(u64),
}

#[derive(Debug)]
struct State {
    fault: Mutex<(RepositoryFault, u64)>,
    /// Pack bytes sent since the server started.
    pack_bytes: AtomicU64,
    requests: AtomicU64,
    /// Pack requests whose range started after byte 0 (a resumed download).
    resumed: AtomicU64,
    /// A pack download is being held (the HoldAfter point was reached).
    holding: AtomicBool,
    /// The CutAfter point was reached.
    cut: AtomicBool,
    stop: AtomicBool,
    record: Mutex<CutRecord>,
}

/// Where a cut download started, where it was cut, and where it went on afterwards
/// (byte offsets in the pack file), since the last [`RepositoryFault::CutAfter`] was set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CutRecord {
    /// The start of the first pack request after the fault was set.
    pub first_start: Option<u64>,
    /// The offset at which a pack download was cut.
    pub cut_at: Option<u64>,
    /// The start of the first pack request after the cut.
    pub next_start: Option<u64>,
}

impl CutRecord {
    /// Whether the download went on after the cut from further than it first started
    /// (it resumed instead of starting over).
    pub fn resumed(&self) -> bool {
        matches!((self.first_start, self.cut_at, self.next_start),
            (Some(first), Some(_), Some(next)) if next > first)
    }
}

/// The server. Dropping it stops it.
#[derive(Debug)]
pub struct RepositoryServer {
    addr: SocketAddr,
    dir: PathBuf,
    state: Arc<State>,
    accept: Option<JoinHandle<()>>,
}

impl RepositoryServer {
    /// Serves `dir` on 127.0.0.1 (`port` 0: any free port).
    pub fn start(dir: &Path, port: u16) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", port))
            .with_context(|| format!("binding the release repository on 127.0.0.1:{port}"))?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State {
            fault: Mutex::new((RepositoryFault::None, 0)),
            pack_bytes: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            resumed: AtomicU64::new(0),
            holding: AtomicBool::new(false),
            cut: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            record: Mutex::new(CutRecord::default()),
        });
        let root = dir.to_owned();
        let shared = Arc::clone(&state);
        let accept = std::thread::Builder::new()
            .name("repository".into())
            .spawn(move || {
                for conn in listener.incoming() {
                    if shared.stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    let (root, shared) = (root.clone(), Arc::clone(&shared));
                    let _ = std::thread::Builder::new()
                        .name("repository-conn".into())
                        .spawn(move || {
                            let _ = serve(conn, &root, &shared);
                        });
                }
            })
            .context("starting the repository's thread")?;
        Ok(RepositoryServer {
            addr,
            dir: dir.to_owned(),
            state,
            accept: Some(accept),
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The directory served.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Sets what the repository does from now on (a count starts from now).
    pub fn set_fault(&self, fault: RepositoryFault) {
        let mut guard = self.state.fault.lock().unwrap_or_else(|p| p.into_inner());
        *guard = (fault, self.state.pack_bytes.load(Ordering::SeqCst));
        self.state.holding.store(false, Ordering::SeqCst);
        if let RepositoryFault::CutAfter(_) = fault {
            self.state.cut.store(false, Ordering::SeqCst);
            *self.state.record.lock().unwrap_or_else(|p| p.into_inner()) = CutRecord::default();
        }
    }

    /// Where the last cut download started, was cut, and went on.
    pub fn cut_record(&self) -> CutRecord {
        *self.state.record.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// What the repository does now (a reached cut reads as `Down`).
    pub fn fault(&self) -> RepositoryFault {
        fault_now(&self.state)
    }

    /// Pack bytes sent so far.
    pub fn pack_bytes_served(&self) -> u64 {
        self.state.pack_bytes.load(Ordering::SeqCst)
    }

    /// Requests answered or refused so far.
    pub fn requests(&self) -> u64 {
        self.state.requests.load(Ordering::SeqCst)
    }

    /// Pack requests whose range started after byte 0.
    pub fn resumed_requests(&self) -> u64 {
        self.state.resumed.load(Ordering::SeqCst)
    }

    /// Whether a download is held at the [`RepositoryFault::HoldAfter`] point.
    pub fn holding(&self) -> bool {
        self.state.holding.load(Ordering::SeqCst)
    }

    /// Whether the [`RepositoryFault::CutAfter`] point was reached.
    pub fn was_cut(&self) -> bool {
        self.state.cut.load(Ordering::SeqCst)
    }
}

impl Drop for RepositoryServer {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(handle) = self.accept.take() {
            let _ = handle.join();
        }
    }
}

fn fault_now(state: &State) -> RepositoryFault {
    let guard = state.fault.lock().unwrap_or_else(|p| p.into_inner());
    match guard.0 {
        RepositoryFault::CutAfter(_) if state.cut.load(Ordering::SeqCst) => RepositoryFault::Down,
        other => other,
    }
}

/// How many more pack bytes may be sent before the fault's point (None: no limit).
fn allowance(state: &State) -> Option<u64> {
    let guard = state.fault.lock().unwrap_or_else(|p| p.into_inner());
    let (fault, since) = *guard;
    let sent = state
        .pack_bytes
        .load(Ordering::SeqCst)
        .saturating_sub(since);
    match fault {
        RepositoryFault::CutAfter(n) | RepositoryFault::HoldAfter(n) => {
            Some(n.saturating_sub(sent))
        }
        RepositoryFault::None | RepositoryFault::Down => None,
    }
}

/// A [`RepositoryFault::HoldAfter`] whose point lies beyond the first pack request
/// (of `length` bytes) after it was set is moved to half that request.
fn hold_inside(state: &State, length: u64) {
    let mut guard = state.fault.lock().unwrap_or_else(|p| p.into_inner());
    let (fault, since) = *guard;
    let untouched = state.pack_bytes.load(Ordering::SeqCst) == since;
    if let RepositoryFault::HoldAfter(n) = fault {
        if untouched && length < n.saturating_mul(2) {
            guard.0 = RepositoryFault::HoldAfter((length / 2).max(1));
        }
    }
}

fn read_line(reader: &mut impl BufRead) -> std::io::Result<String> {
    let mut line = Vec::new();
    let n = reader
        .take(MAX_LINE as u64 + 1)
        .read_until(b'\n', &mut line)?;
    if n > MAX_LINE {
        return Err(std::io::Error::other("request line too long"));
    }
    Ok(String::from_utf8_lossy(&line).trim_end().to_owned())
}

fn answer(conn: &mut TcpStream, status: &str) -> std::io::Result<()> {
    conn.write_all(
        format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").as_bytes(),
    )
}

fn serve(mut conn: TcpStream, root: &Path, state: &State) -> std::io::Result<()> {
    state.requests.fetch_add(1, Ordering::SeqCst);
    if fault_now(state) == RepositoryFault::Down {
        return conn.shutdown(std::net::Shutdown::Both);
    }
    conn.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let request = read_line(&mut reader)?;
    let mut parts = request.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or("/"));
    let mut range_start: Option<u64> = None;
    let mut range_end: Option<u64> = None;
    for _ in 0..MAX_HEADERS {
        let header = read_line(&mut reader)?;
        if header.is_empty() {
            break;
        }
        let lower = header.to_ascii_lowercase();
        if let Some(spec) = lower.strip_prefix("range: bytes=") {
            let (a, b) = spec.trim().split_once('-').unwrap_or(("", ""));
            range_start = a.parse().ok();
            range_end = b.parse().ok();
        }
    }
    if method != "GET" && method != "HEAD" {
        return answer(&mut conn, "405 Method Not Allowed");
    }
    let rel = path.split('?').next().unwrap_or("").trim_start_matches('/');
    if rel.split('/').any(|part| part == "..") || rel.contains('\\') {
        return answer(&mut conn, "400 Bad Request");
    }
    let file_path = root.join(rel);
    let Ok(mut file) = std::fs::File::open(&file_path) else {
        return answer(&mut conn, "404 Not Found");
    };
    let len = file.metadata()?.len();
    if file.metadata()?.is_dir() {
        return answer(&mut conn, "404 Not Found");
    }
    let is_pack = rel.ends_with(".pack");
    let (start, end) = match range_start {
        Some(start) if start < len => (start, range_end.map_or(len, |e| (e + 1).min(len))),
        Some(_) => return answer(&mut conn, "416 Range Not Satisfiable"),
        None => (0, len),
    };
    if is_pack && start > 0 {
        state.resumed.fetch_add(1, Ordering::SeqCst);
    }
    if is_pack {
        hold_inside(state, end - start);
        let mut record = state.record.lock().unwrap_or_else(|p| p.into_inner());
        if record.first_start.is_none() {
            record.first_start = Some(start);
        } else if record.cut_at.is_some() && record.next_start.is_none() {
            record.next_start = Some(start);
        }
    }
    let head = if range_start.is_some() {
        format!(
            "HTTP/1.1 206 Partial Content\r\nContent-Length: {}\r\nContent-Range: bytes {start}-{}/{len}\r\nConnection: close\r\n\r\n",
            end - start,
            end.saturating_sub(1)
        )
    } else {
        format!("HTTP/1.1 200 OK\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n")
    };
    conn.write_all(head.as_bytes())?;
    if method == "HEAD" {
        return Ok(());
    }
    file.seek(SeekFrom::Start(start))?;
    let mut left = end - start;
    let mut buf = vec![0u8; 16 << 10];
    while left > 0 {
        let mut want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        if is_pack {
            if let Some(allowed) = allowance(state) {
                if allowed == 0 {
                    return reached(conn, state, end - left);
                }
                want = want.min(usize::try_from(allowed).unwrap_or(usize::MAX));
            }
        }
        let n = file.read(&mut buf[..want])?;
        if n == 0 {
            break;
        }
        conn.write_all(&buf[..n])?;
        left -= n as u64;
        if is_pack {
            state.pack_bytes.fetch_add(n as u64, Ordering::SeqCst);
        }
    }
    conn.flush()
}

/// The fault's point was reached on this connection: cut it, or hold it.
fn reached(conn: TcpStream, state: &State, offset: u64) -> std::io::Result<()> {
    let fault = fault_now(state);
    match fault {
        RepositoryFault::CutAfter(_) => {
            state
                .record
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .cut_at
                .get_or_insert(offset);
            state.cut.store(true, Ordering::SeqCst);
            conn.shutdown(std::net::Shutdown::Both)
        }
        RepositoryFault::HoldAfter(_) => {
            state.holding.store(true, Ordering::SeqCst);
            // Hold until the fault changes or the server stops; then drop the
            // connection (the client, if it still lives, resumes).
            while matches!(fault_now(state), RepositoryFault::HoldAfter(_))
                && state.holding.load(Ordering::SeqCst)
                && !state.stop.load(Ordering::SeqCst)
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            conn.shutdown(std::net::Shutdown::Both)
        }
        RepositoryFault::None | RepositoryFault::Down => conn.shutdown(std::net::Shutdown::Both),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(url: &str, range: Option<&str>) -> std::io::Result<(String, Vec<u8>)> {
        let addr = url.trim_start_matches("http://");
        let (host, path) = addr.split_once('/').unwrap_or((addr, ""));
        let mut conn = TcpStream::connect(host)?;
        let range = range
            .map(|r| format!("Range: bytes={r}\r\n"))
            .unwrap_or_default();
        write!(conn, "GET /{path} HTTP/1.1\r\nHost: x\r\n{range}\r\n")?;
        let mut all = Vec::new();
        conn.read_to_end(&mut all)?;
        let split = all
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map_or(all.len(), |p| p + 4);
        let head = String::from_utf8_lossy(&all[..split]).into_owned();
        Ok((head, all[split..].to_vec()))
    }

    fn served() -> (tempfile::TempDir, RepositoryServer) {
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(dir.path().join("x.image.pack"), &data).unwrap();
        std::fs::write(dir.path().join("timestamp.json"), b"{}").unwrap();
        let server = RepositoryServer::start(dir.path(), 0).unwrap();
        (dir, server)
    }

    #[test]
    fn ranges_are_served_and_a_resume_is_counted() {
        let (_dir, server) = served();
        let (head, body) = get(&format!("{}/x.image.pack", server.url()), None).unwrap();
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert_eq!(body.len(), 100_000);
        let (head, body) =
            get(&format!("{}/x.image.pack", server.url()), Some("1000-1999")).unwrap();
        assert!(head.contains("206") && head.contains("bytes 1000-1999/100000"));
        assert_eq!(body[0], (1000 % 251) as u8);
        assert_eq!(body.len(), 1000);
        assert_eq!(server.resumed_requests(), 1);
        assert_eq!(server.pack_bytes_served(), 101_000);
        let (head, _) = get(&format!("{}/../etc/passwd", server.url()), None).unwrap();
        assert!(head.starts_with("HTTP/1.1 400"), "{head}");
    }

    #[test]
    fn a_cut_drops_the_download_at_its_point_and_stays_down_until_up() {
        let (_dir, server) = served();
        server.set_fault(RepositoryFault::CutAfter(40_000));
        let (_, body) = get(&format!("{}/x.image.pack", server.url()), None).unwrap();
        assert_eq!(body.len(), 40_000);
        assert!(server.was_cut());
        assert_eq!(server.fault(), RepositoryFault::Down);
        let metadata = get(&format!("{}/timestamp.json", server.url()), None);
        assert!(
            metadata.map_or(true, |(head, _)| head.is_empty()),
            "down answers nothing"
        );
        server.set_fault(RepositoryFault::None);
        let (head, body) = get(&format!("{}/timestamp.json", server.url()), None).unwrap();
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert_eq!(body, b"{}");
        assert!(!server.cut_record().resumed(), "{:?}", server.cut_record());
        get(&format!("{}/x.image.pack", server.url()), Some("40000-")).unwrap();
        let record = server.cut_record();
        assert_eq!(
            (record.first_start, record.cut_at, record.next_start),
            (Some(0), Some(40_000), Some(40_000))
        );
        assert!(record.resumed());
    }

    #[test]
    fn a_hold_keeps_the_download_still_until_released() {
        let (_dir, server) = served();
        server.set_fault(RepositoryFault::HoldAfter(10_000));
        let url = format!("{}/x.image.pack", server.url());
        let client = std::thread::spawn(move || get(&url, None).unwrap().1.len());
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !server.holding() {
            assert!(std::time::Instant::now() < deadline, "never held");
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(server.pack_bytes_served(), 10_000);
        server.set_fault(RepositoryFault::None);
        assert_eq!(client.join().unwrap(), 10_000);
    }

    #[test]
    fn a_hold_beyond_a_short_download_lands_inside_it() {
        let (_dir, server) = served();
        server.set_fault(RepositoryFault::HoldAfter(65_536));
        let url = format!("{}/x.image.pack", server.url());
        // 20 000 bytes asked, fewer than twice the point: held after half of them.
        let client = std::thread::spawn(move || get(&url, Some("0-19999")).unwrap().1.len());
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !server.holding() {
            assert!(std::time::Instant::now() < deadline, "never held");
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(server.pack_bytes_served(), 10_000);
        server.set_fault(RepositoryFault::None);
        assert_eq!(client.join().unwrap(), 10_000);
    }
}
