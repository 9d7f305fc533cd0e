//! A static HTTP server on 127.0.0.1 that counts what it sends: the repository served
//! as any static server or CDN would (GET, single `Range: bytes=A-B` / `bytes=A-`), so
//! the bytes a device fetches are measured on the wire, not taken from the installer.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use crate::Error;

/// The most header bytes one request may send before it is refused.
const MAX_HEAD: u64 = 16 * 1024;

/// What the server has sent since the last [`Counting::take`].
#[derive(Debug, Default)]
pub struct Counters {
    pub requests: AtomicU64,
    /// Response bodies (file bytes) only.
    pub body_bytes: AtomicU64,
    /// Status lines and headers.
    pub head_bytes: AtomicU64,
}

/// One snapshot of the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counted {
    pub requests: u64,
    pub body_bytes: u64,
    pub head_bytes: u64,
}

pub struct Counting {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    counters: Arc<Counters>,
    handle: Option<JoinHandle<()>>,
}

impl Counting {
    pub fn start(root: PathBuf) -> Result<Self, Error> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let counters = Arc::new(Counters::default());
        let (stop2, counters2) = (stop.clone(), counters.clone());
        let handle = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (root, counters) = (root.clone(), counters2.clone());
                std::thread::spawn(move || {
                    if let Err(e) = serve(conn, &root, &counters) {
                        eprintln!("delta-bench: server: {e}");
                    }
                });
            }
        });
        Ok(Self {
            addr,
            stop,
            counters,
            handle: Some(handle),
        })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The counts so far, and zero again.
    pub fn take(&self) -> Counted {
        Counted {
            requests: self.counters.requests.swap(0, Ordering::SeqCst),
            body_bytes: self.counters.body_bytes.swap(0, Ordering::SeqCst),
            head_bytes: self.counters.head_bytes.swap(0, Ordering::SeqCst),
        }
    }
}

impl Drop for Counting {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// A request's byte range: `start..end`, `end` exclusive and `None` for "to the end".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    pub start: u64,
    pub end: Option<u64>,
}

/// Parses the value of a `Range` header: one range, `bytes=A-B` or `bytes=A-`.
/// Suffix ranges (`bytes=-N`) and lists are refused (the installer sends neither).
pub fn parse_range(value: &str) -> Option<ByteRange> {
    let spec = value.trim().strip_prefix("bytes=")?;
    let (a, b) = spec.split_once('-')?;
    let start: u64 = a.trim().parse().ok()?;
    let b = b.trim();
    let end = if b.is_empty() {
        None
    } else {
        let last: u64 = b.parse().ok()?;
        (last >= start).then_some(())?;
        Some(last.checked_add(1)?)
    };
    Some(ByteRange { start, end })
}

/// The file under `root` a request path names; `None` for anything but plain names.
fn resolve(root: &Path, path: &str) -> Option<PathBuf> {
    let rel = Path::new(path.split('?').next()?.trim_start_matches('/'));
    rel.components()
        .all(|c| matches!(c, Component::Normal(_)))
        .then(|| root.join(rel))
}

fn serve(conn: TcpStream, root: &Path, counters: &Counters) -> Result<(), Error> {
    let mut reader = BufReader::new(conn.try_clone()?.take(MAX_HEAD));
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut words = line.split_whitespace();
    let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or("/"));
    let mut range = None;
    let mut bad_range = false;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h == "\r\n" || h == "\n" {
            break;
        }
        if let Some((name, value)) = h.split_once(':') {
            if name.trim().eq_ignore_ascii_case("range") {
                range = parse_range(value);
                bad_range = range.is_none();
            }
        }
    }
    counters.requests.fetch_add(1, Ordering::SeqCst);
    let mut conn = conn;
    let mut answer = |status: &str, extra: &str| -> Result<(), Error> {
        let head =
            format!("HTTP/1.1 {status}\r\n{extra}Content-Length: 0\r\nConnection: close\r\n\r\n");
        counters
            .head_bytes
            .fetch_add(head.len() as u64, Ordering::SeqCst);
        Ok(conn.write_all(head.as_bytes())?)
    };
    if method != "GET" {
        return answer("405 Method Not Allowed", "");
    }
    let Some(file) = resolve(root, path) else {
        return answer("400 Bad Request", "");
    };
    let Ok(mut file) = File::open(&file).and_then(|f| f.metadata().map(|m| (f, m))) else {
        return answer("404 Not Found", "");
    };
    if !file.1.is_file() {
        return answer("404 Not Found", "");
    }
    let total = file.1.len();
    let (status, start, end) = match range {
        _ if bad_range => return answer("416 Range Not Satisfiable", ""),
        Some(r) => {
            let end = r.end.map_or(total, |e| e.min(total));
            if r.start >= end {
                return answer(
                    "416 Range Not Satisfiable",
                    &format!("Content-Range: bytes */{total}\r\n"),
                );
            }
            ("206 Partial Content", r.start, end)
        }
        None => ("200 OK", 0, total),
    };
    let mut head = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nAccept-Ranges: bytes\r\nConnection: close\r\n",
        end - start
    );
    if range.is_some() {
        head += &format!("Content-Range: bytes {start}-{}/{total}\r\n", end - 1);
    }
    head += "\r\n";
    counters
        .head_bytes
        .fetch_add(head.len() as u64, Ordering::SeqCst);
    let mut conn = conn;
    conn.write_all(head.as_bytes())?;
    file.0.seek(SeekFrom::Start(start))?;
    let mut body = file.0.take(end - start);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = body.read(&mut buf)?;
        if n == 0 {
            break;
        }
        conn.write_all(&buf[..n])?;
        counters.body_bytes.fetch_add(n as u64, Ordering::SeqCst);
    }
    conn.flush()?;
    let _ = conn.shutdown(std::net::Shutdown::Write);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_the_installer_sends_parse() {
        assert_eq!(
            parse_range("bytes=10-19"),
            Some(ByteRange {
                start: 10,
                end: Some(20)
            })
        );
        assert_eq!(
            parse_range(" bytes=7-\r\n"),
            Some(ByteRange {
                start: 7,
                end: None
            })
        );
    }

    #[test]
    fn other_ranges_are_refused() {
        for bad in [
            "bytes=-5",
            "bytes=9-3",
            "items=0-1",
            "bytes=0-1,4-5",
            "bytes=x-",
            "bytes=0-18446744073709551615",
        ] {
            assert_eq!(parse_range(bad), None, "{bad}");
        }
    }

    #[test]
    fn only_plain_names_under_the_root_resolve() {
        let root = Path::new("/srv/repo");
        assert_eq!(
            resolve(root, "/metadata/timestamp.json"),
            Some(root.join("metadata/timestamp.json"))
        );
        assert_eq!(resolve(root, "/../etc/passwd"), None);
        assert_eq!(resolve(root, "/a/./b"), Some(root.join("a/b")));
    }

    #[test]
    fn counts_the_bytes_of_a_ranged_get() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f.pack"), b"0123456789").unwrap();
        let server = Counting::start(dir.path().into()).unwrap();
        let mut conn = TcpStream::connect(server.addr).unwrap();
        conn.write_all(b"GET /f.pack HTTP/1.1\r\nRange: bytes=2-5\r\n\r\n")
            .unwrap();
        let mut reply = String::new();
        conn.read_to_string(&mut reply).unwrap();
        assert!(reply.starts_with("HTTP/1.1 206"), "{reply}");
        assert!(reply.contains("Content-Range: bytes 2-5/10"), "{reply}");
        assert!(reply.ends_with("\r\n\r\n2345"), "{reply}");
        let counted = server.take();
        assert_eq!((counted.requests, counted.body_bytes), (1, 4));
        assert_eq!(counted.head_bytes as usize, reply.len() - 4);
        assert_eq!(server.take().body_bytes, 0);
    }
}
