//! The peers the bytes we fetch are measured against: casync (a chunk store shared by
//! v1 and v2; the client fetches v2's chunks not in v1's store, plus v2's `.caibx`) and
//! `zstd --long --patch-from` (one patch file, checked by applying it).

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;
use std::process::Command;

use crate::Error;

pub const TOOLS: [&str; 6] = [
    "casync",
    "zstd",
    "cmp",
    "mke2fs",
    "mksquashfs",
    "debootstrap",
];

/// Fails naming what to install when a tool is missing.
pub fn check_tools() -> Result<(), Error> {
    crate::bench_common::check_tools(&TOOLS)
}

pub use crate::bench_common::run;

pub use crate::bench_common::casync_delta;

/// The `--long` window log that covers an image of `len` bytes (zstd's range is 10..=31).
pub fn window_log(len: u64) -> Result<u32, Error> {
    let log = 64 - len.saturating_sub(1).leading_zeros();
    if log > 31 {
        return Err(format!("a {len}-byte image is over zstd's largest window (2 GiB)").into());
    }
    Ok(log.max(10))
}

/// Size of `zstd -LEVEL --long=W --patch-from=v1 v2`, after checking that the patch
/// applied to v1 gives v2 back.
pub fn zstd_patch(w: &Path, v1: &Path, v2: &Path, level: u32) -> Result<u64, Error> {
    let len = std::fs::metadata(v1)?
        .len()
        .max(std::fs::metadata(v2)?.len());
    let long = format!("--long={}", window_log(len)?);
    let memory = format!("--memory={}MB", (len >> 20) * 2 + 64);
    let patch = w.join(format!("v2.{level}.patch.zst"));
    let back = w.join("v2.from-patch");
    run(Command::new("zstd")
        .args(["-q", "-f", &format!("-{level}"), &long, &memory])
        .arg(format!("--patch-from={}", v1.display()))
        .arg(v2)
        .arg("-o")
        .arg(&patch))?;
    run(Command::new("zstd")
        .args(["-q", "-f", "-d", &long, &memory])
        .arg(format!("--patch-from={}", v1.display()))
        .arg(&patch)
        .arg("-o")
        .arg(&back))?;
    run(Command::new("cmp").arg(&back).arg(v2))?;
    std::fs::remove_file(&back)?;
    let bytes = std::fs::metadata(&patch)?.len();
    std::fs::remove_file(&patch)?;
    Ok(bytes)
}

/// How many 4 KiB blocks of `v2` differ from the same block of `v1` (blocks past the
/// end of v1 count as changed).
pub fn changed_blocks(v1: &Path, v2: &Path) -> Result<u64, Error> {
    const BLOCK: usize = 4096;
    let mut a = BufReader::with_capacity(1 << 20, File::open(v1)?);
    let mut b = BufReader::with_capacity(1 << 20, File::open(v2)?);
    let (mut x, mut y) = (vec![0u8; BLOCK], vec![0u8; BLOCK]);
    let mut changed = 0;
    loop {
        let n = read_full(&mut b, &mut y)?;
        if n == 0 {
            return Ok(changed);
        }
        let m = read_full(&mut a, &mut x)?;
        if m != n || x[..n] != y[..n] {
            changed += 1;
        }
    }
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> Result<usize, Error> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// Total bytes of the files under `dir`.
pub fn tree_bytes(dir: &Path) -> Result<u64, Error> {
    let mut all = HashSet::new();
    crate::bench_common::files(dir, &mut all)?;
    let mut total = 0;
    for p in all {
        total += std::fs::metadata(p)?.len();
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_covers_the_image() {
        assert_eq!(window_log(1).unwrap(), 10);
        assert_eq!(window_log(256 << 20).unwrap(), 28);
        assert_eq!(window_log((256 << 20) + 1).unwrap(), 29);
        assert_eq!(window_log(2 << 30).unwrap(), 31);
        assert!(window_log((2 << 30) + 1).is_err());
    }

    #[test]
    fn changed_blocks_are_counted() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        let mut v1 = vec![0u8; 4096 * 4];
        std::fs::write(&a, &v1).unwrap();
        v1[4096 + 7] = 1;
        v1.extend_from_slice(&[0u8; 100]);
        std::fs::write(&b, &v1).unwrap();
        assert_eq!(changed_blocks(&a, &b).unwrap(), 2);
        assert_eq!(changed_blocks(&a, &a).unwrap(), 0);
    }
}
