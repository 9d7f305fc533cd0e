//! A bundle on disk: its table of contents checked against the file's length, and byte
//! ranges of the repository files it holds read by positioned reads.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::BundleError;
use crate::limits::MAX_TOC_LEN;
use crate::toc::{Header, Toc, HEADER_LEN};
use crate::DESCRIPTION;

/// An opened, validated bundle.
#[derive(Debug, Clone)]
pub struct BundleFile {
    path: PathBuf,
    file: Arc<File>,
    toc: Toc,
}

impl BundleFile {
    /// Opens `path` and validates its header and table of contents, and that the file is
    /// exactly as long as they say (a bundle cut short, or with bytes appended, is refused
    /// here, before any of it is used).
    pub fn open(path: &Path) -> Result<Self, BundleError> {
        let io = |source| BundleError::Io {
            path: path.into(),
            source,
        };
        let file = File::open(path).map_err(io)?;
        let found = file.metadata().map_err(io)?.len();
        let mut head = [0u8; HEADER_LEN];
        let got = read_up_to(&file, &mut head, 0).map_err(io)?;
        let header = Header::decode(&head[..got])?;
        let needed = header.bundle_len();
        if found < HEADER_LEN as u64 + header.toc_len {
            return Err(BundleError::Truncated {
                part: "table of contents",
                needed: HEADER_LEN as u64 + header.toc_len,
                found,
            });
        }
        // Bounded by MAX_TOC_LEN in Header::decode.
        debug_assert!(header.toc_len <= MAX_TOC_LEN);
        let mut toc = vec![0u8; header.toc_len as usize];
        file.read_exact_at(&mut toc, HEADER_LEN as u64)
            .map_err(io)?;
        let toc = Toc::decode(header, &toc)?;
        if found < needed {
            return Err(BundleError::Truncated {
                part: "data",
                needed,
                found,
            });
        }
        if found > needed {
            return Err(BundleError::TrailingBytes {
                expected: needed,
                found,
            });
        }
        Ok(Self {
            path: path.into(),
            file: Arc::new(file),
            toc,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn toc(&self) -> &Toc {
        &self.toc
    }

    /// A reader over `len` bytes of the bundle from `bundle_offset` (a location the table
    /// of contents gave).
    pub fn reader(&self, bundle_offset: u64, len: u64) -> impl Read + Send + 'static {
        PositionedReader {
            file: self.file.clone(),
            at: bundle_offset,
            left: len,
        }
    }

    /// The bundle's description file ([`DESCRIPTION`]), if it holds one of sane size.
    pub fn description(&self) -> Option<Vec<u8>> {
        let entry = self.toc.file(DESCRIPTION).filter(|e| e.is_whole())?;
        if entry.len > 64 * 1024 {
            return None;
        }
        let mut out = vec![0u8; entry.len as usize];
        self.file
            .read_exact_at(&mut out, entry.extents[0].bundle_offset)
            .ok()?;
        Some(out)
    }
}

fn read_up_to(file: &File, buf: &mut [u8], at: u64) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match file.read_at(&mut buf[got..], at + got as u64)? {
            0 => break,
            n => got += n,
        }
    }
    Ok(got)
}

struct PositionedReader {
    file: Arc<File>,
    at: u64,
    left: u64,
}

impl Read for PositionedReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let want = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        if want == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..want], self.at)?;
        self.at += n as u64;
        self.left -= n as u64;
        Ok(n)
    }
}
