//! Settling and verifying a written target: fsync, then drop its cached pages
//! (`posix_fadvise(DONTNEED)`) so the read-back comes from the medium rather than the
//! page cache, then read every piece back and compare: a data piece by its hash, a zero
//! piece by its bytes (holes of a file target need no read: the filesystem says zero).

use std::fs::File;
use std::os::unix::fs::FileExt;

use rustix::fs::Advice;

use super::copy::{is_zero, Piece, BLOCK, CHUNK};
use super::error::FlashError;
use super::layout::{next_data, next_hole};
use super::target::Target;

/// Flushes the target to the medium and forgets its cached pages.
pub fn settle(target: &Target) -> Result<(), FlashError> {
    target
        .file
        .sync_all()
        .map_err(FlashError::io("sync", &target.path))?;
    rustix::fs::fadvise(&target.file, 0, None, Advice::DontNeed)
        .map_err(|e| FlashError::io("drop the cached pages of", &target.path)(e.into()))
}

/// Reads every piece back from `target`; returns the bytes read and compared.
pub fn verify(
    target: &Target,
    pieces: &[Piece],
    progress: &indicatif::ProgressBar,
) -> Result<u64, FlashError> {
    let mut buf = vec![0; CHUNK];
    let mut read = 0;
    for piece in pieces {
        read += match piece.digest {
            Some(digest) => verify_data(target, piece, digest, &mut buf)?,
            None => verify_zeros(target, piece, &mut buf)?,
        };
        progress.inc(piece.len);
    }
    Ok(read)
}

fn mismatch(target: &Target, offset: u64, len: u64) -> FlashError {
    FlashError::Mismatch {
        target: target.path.clone(),
        offset,
        len,
    }
}

fn read(target: &Target, buf: &mut [u8], offset: u64) -> Result<(), FlashError> {
    target
        .file
        .read_exact_at(buf, offset)
        .map_err(FlashError::io("read back", &target.path))
}

fn verify_data(
    target: &Target,
    piece: &Piece,
    digest: blake3::Hash,
    buf: &mut [u8],
) -> Result<u64, FlashError> {
    // The copy makes a data piece at most one chunk long.
    let n = usize::try_from(piece.len)
        .ok()
        .filter(|n| *n <= buf.len())
        .ok_or_else(|| mismatch(target, piece.offset, piece.len))?;
    read(target, &mut buf[..n], piece.offset)?;
    if blake3::hash(&buf[..n]) != digest {
        return Err(mismatch(target, piece.offset, piece.len));
    }
    Ok(piece.len)
}

fn verify_zeros(target: &Target, piece: &Piece, buf: &mut [u8]) -> Result<u64, FlashError> {
    let end = piece.offset + piece.len;
    let file: &File = &target.file;
    let io = |e| FlashError::io("read back", &target.path)(e);
    let mut read_back = 0;
    let mut at = piece.offset;
    while let Some(start) = next_data(file, at, end).map_err(io)? {
        let stop = next_hole(file, start, end).map_err(io)?;
        let mut pos = start;
        while pos < stop {
            let n = (buf.len() as u64).min(stop - pos) as usize;
            read(target, &mut buf[..n], pos)?;
            if !is_zero(&buf[..n]) {
                let first = buf[..n]
                    .chunks(BLOCK)
                    .position(|b| !is_zero(b))
                    .unwrap_or(0);
                return Err(mismatch(target, pos + (first * BLOCK) as u64, BLOCK as u64));
            }
            read_back += n as u64;
            pos += n as u64;
        }
        at = stop;
    }
    Ok(read_back)
}
