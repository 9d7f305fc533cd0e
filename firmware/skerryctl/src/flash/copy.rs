//! The copy: the image's data ranges are read in chunks of [`CHUNK`] bytes, each chunk
//! is hashed (for the verification) and scanned in blocks of [`BLOCK`] bytes; runs of
//! non-zero blocks are written, runs of zero blocks and the image's holes are skipped
//! when the target's unwritten bytes are zeros by definition, and otherwise read back
//! and written only where the target is not already zero. Sizes are ours, never the
//! image's, so memory stays at two chunks whatever is flashed.

use std::fs::File;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::Path;

use indicatif::ProgressBar;

use super::error::FlashError;
use super::target::{Target, Zeros};

/// How much is read, hashed and written at a time.
pub const CHUNK: usize = 4 << 20;
/// The granularity of zero detection (a filesystem block, as bmaptool uses).
pub const BLOCK: usize = 4096;

/// On a device, how much is written between flushes: the page cache would otherwise take
/// the whole image at once, the bar would race to the end and the final sync stall.
pub const FLUSH_EVERY: u64 = 16 << 20;

static ZERO_BLOCK: [u8; BLOCK] = [0; BLOCK];

/// A stretch of the image and what the target must read there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece {
    pub offset: u64,
    pub len: u64,
    /// The hash of the image's bytes, or `None` where the image is all zeros.
    pub digest: Option<blake3::Hash>,
}

/// What the copy did.
#[derive(Debug, Default)]
pub struct Copied {
    pub written: u64,
    pub skipped: u64,
    /// The whole image, in order, as pieces to verify.
    pub pieces: Vec<Piece>,
}

/// True when `bytes` are all zero.
pub fn is_zero(bytes: &[u8]) -> bool {
    bytes.chunks(BLOCK).all(|b| b == &ZERO_BLOCK[..b.len()])
}

/// Runs of equal zero-ness in `bytes`, block by block: `(range, is_zero)`.
fn runs(bytes: &[u8]) -> impl Iterator<Item = (Range<usize>, bool)> + '_ {
    let mut blocks = bytes.chunks(BLOCK).map(is_zero).enumerate().peekable();
    std::iter::from_fn(move || {
        let (first, zero) = blocks.next()?;
        let mut last = first;
        while let Some((i, _)) = blocks.next_if(|(_, z)| *z == zero) {
            last = i;
        }
        Some((first * BLOCK..bytes.len().min((last + 1) * BLOCK), zero))
    })
}

struct Copier<'a> {
    image: &'a File,
    image_path: &'a Path,
    target: &'a Target,
    progress: &'a ProgressBar,
    buf: Vec<u8>,
    old: Vec<u8>,
    zeros: Vec<u8>,
    unflushed: u64,
    out: Copied,
}

/// Copies the image (`len` bytes, data in `data`) to `target`.
pub fn copy(
    image: &File,
    image_path: &Path,
    len: u64,
    data: &[Range<u64>],
    target: &Target,
    progress: &ProgressBar,
) -> Result<Copied, FlashError> {
    let dirty = target.zeros == Zeros::Unknown;
    let mut copier = Copier {
        image,
        image_path,
        target,
        progress,
        buf: vec![0; CHUNK],
        old: if dirty { vec![0; CHUNK] } else { Vec::new() },
        zeros: if dirty { vec![0; CHUNK] } else { Vec::new() },
        unflushed: 0,
        out: Copied::default(),
    };
    let mut at = 0;
    for range in data {
        let range = range.start.min(len)..range.end.min(len);
        copier.zero_run(at, range.start.saturating_sub(at))?;
        copier.data(range.clone())?;
        at = at.max(range.end);
    }
    copier.zero_run(at, len.saturating_sub(at))?;
    Ok(copier.out)
}

impl Copier<'_> {
    fn data(&mut self, range: Range<u64>) -> Result<(), FlashError> {
        let mut at = range.start;
        while at < range.end {
            let n = CHUNK.min((range.end - at) as usize);
            self.image
                .read_exact_at(&mut self.buf[..n], at)
                .map_err(FlashError::io("read the image", self.image_path))?;
            let chunk = &self.buf[..n];
            if is_zero(chunk) {
                self.zero_run(at, n as u64)?;
                at += n as u64;
                continue;
            }
            let digest = blake3::hash(chunk);
            let mut zero_runs = Vec::new();
            for (run, zero) in runs(chunk) {
                let offset = at + run.start as u64;
                if zero {
                    zero_runs.push((offset, run.len() as u64));
                } else {
                    self.target
                        .file
                        .write_all_at(&chunk[run.clone()], offset)
                        .map_err(FlashError::io("write", &self.target.path))?;
                    self.out.written += run.len() as u64;
                    self.unflushed += run.len() as u64;
                }
            }
            for (offset, len) in zero_runs {
                self.clear(offset, len)?;
            }
            self.out.pieces.push(Piece {
                offset: at,
                len: n as u64,
                digest: Some(digest),
            });
            self.progress.inc(n as u64);
            self.flush_now_and_then()?;
            at += n as u64;
        }
        Ok(())
    }

    /// A stretch where the image is all zeros: recorded, cleared on the target, counted.
    fn zero_run(&mut self, offset: u64, len: u64) -> Result<(), FlashError> {
        if len == 0 {
            return Ok(());
        }
        match self.out.pieces.last_mut() {
            Some(last) if last.digest.is_none() && last.offset + last.len == offset => {
                last.len += len
            }
            _ => self.out.pieces.push(Piece {
                offset,
                len,
                digest: None,
            }),
        }
        let mut at = offset;
        while at < offset + len {
            let n = (CHUNK as u64).min(offset + len - at);
            self.clear(at, n)?;
            self.progress.inc(n);
            at += n;
        }
        Ok(())
    }

    /// Makes the target zero in `offset..offset+len` (at most a chunk): nothing to do
    /// where it is zero by definition; elsewhere it is read and the non-zero runs written.
    fn clear(&mut self, offset: u64, len: u64) -> Result<(), FlashError> {
        if self.target.zeros == Zeros::Guaranteed {
            self.out.skipped += len;
            return Ok(());
        }
        let old = &mut self.old[..len as usize];
        self.target
            .file
            .read_exact_at(old, offset)
            .map_err(FlashError::io("read", &self.target.path))?;
        for (run, zero) in runs(old) {
            if zero {
                self.out.skipped += run.len() as u64;
            } else {
                self.target
                    .file
                    .write_all_at(&self.zeros[..run.len()], offset + run.start as u64)
                    .map_err(FlashError::io("write", &self.target.path))?;
                self.out.written += run.len() as u64;
                self.unflushed += run.len() as u64;
            }
        }
        self.flush_now_and_then()
    }

    /// On a device (old data, zeros unknown), flushes every [`FLUSH_EVERY`] bytes.
    fn flush_now_and_then(&mut self) -> Result<(), FlashError> {
        if self.target.zeros == Zeros::Unknown && self.unflushed >= FLUSH_EVERY {
            self.target
                .file
                .sync_data()
                .map_err(FlashError::io("sync", &self.target.path))?;
            self.unflushed = 0;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_group_whole_blocks_and_end_at_a_short_last_block() {
        let mut bytes = vec![0u8; 4 * BLOCK + 100];
        bytes[5] = 1;
        bytes[4 * BLOCK + 99] = 1;
        let got: Vec<_> = runs(&bytes).collect();
        assert_eq!(
            got,
            vec![
                (0..BLOCK, false),
                (BLOCK..4 * BLOCK, true),
                (4 * BLOCK..4 * BLOCK + 100, false)
            ]
        );
        assert!(is_zero(&bytes[BLOCK..4 * BLOCK + 99]));
        assert!(!is_zero(&bytes));
    }
}
