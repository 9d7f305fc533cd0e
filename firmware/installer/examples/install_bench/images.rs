//! Bench images: ext4 filesystems filled with this machine's own files from /usr (real
//! binaries, libraries and text, so compression and chunking see realistic data).

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::process::Command;

use crate::Error;

/// Makes an ext4 image of `size` bytes about 80% full.
pub fn ext4_image(path: &Path, size: u64, stage: &Path) -> Result<(), Error> {
    std::fs::create_dir_all(stage)?;
    let mut budget = size / 10 * 8;
    for root in ["/usr/lib", "/usr/share", "/usr/bin", "/usr/libexec"] {
        fill(Path::new(root), Path::new(root), stage, &mut budget)?;
    }
    let status = Command::new("mke2fs")
        .args(["-q", "-F", "-t", "ext4", "-b", "4096", "-d"])
        .arg(stage)
        .arg(path)
        .arg(format!("{}k", size / 1024))
        .status()?;
    if !status.success() {
        return Err(format!("mke2fs failed for {}", path.display()).into());
    }
    std::fs::remove_dir_all(stage)?;
    Ok(())
}

fn fill(root: &Path, dir: &Path, stage: &Path, budget: &mut u64) -> Result<(), Error> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    let mut entries: Vec<_> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        if *budget == 0 {
            return Ok(());
        }
        let Ok(meta) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        if meta.is_dir() {
            fill(root, &p, stage, budget)?;
        } else if meta.is_file() && meta.len() <= *budget && meta.len() > 0 {
            let rel = p.strip_prefix("/")?;
            let dest = stage.join(rel);
            if let Some(parent) = dest.parent() {
                std::fs::create_dir_all(parent)?;
            }
            if std::fs::copy(&p, &dest).is_ok() {
                *budget -= meta.len();
            }
        }
    }
    let _ = root;
    Ok(())
}

/// Copies `v1` to `v2` and overwrites `count` random, scattered, non-overlapping regions
/// of `size` bytes with random bytes (one per equal slice of the image). Returns the
/// bytes changed.
pub fn overwrite(v1: &Path, v2: &Path, count: u64, size: u64, seed: u64) -> Result<u64, Error> {
    std::fs::copy(v1, v2)?;
    let len = std::fs::metadata(v2)?.len();
    let mut file = std::fs::OpenOptions::new().write(true).open(v2)?;
    let mut x = seed | 1;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let slice = len / count;
    for i in 0..count {
        let at = i * slice + next() % (slice - size);
        let noise: Vec<u8> = (0..size).map(|_| next() as u8).collect();
        file.seek(SeekFrom::Start(at))?;
        file.write_all(&noise)?;
    }
    file.sync_all()?;
    Ok(count * size)
}

/// Fails unless `slot` starts with exactly the bytes of `image`.
pub fn assert_same(image: &Path, slot: &Path) -> Result<(), Error> {
    let mut a = BufReader::with_capacity(1 << 20, File::open(image)?);
    let mut b = BufReader::with_capacity(
        1 << 20,
        File::open(slot)?.take(std::fs::metadata(image)?.len()),
    );
    let (mut x, mut y) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    loop {
        let n = a.read(&mut x)?;
        if n == 0 {
            return Ok(());
        }
        b.read_exact(&mut y[..n])?;
        if x[..n] != y[..n] {
            return Err(format!("{} differs from {}", slot.display(), image.display()).into());
        }
    }
}
