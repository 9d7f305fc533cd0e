//! The floor: the same pack bytes decompressed, hashed and written by the simplest loop
//! (one thread, no metadata, no verification beyond the chunk hash), then flushed, then
//! read back from the medium (page cache dropped) and hashed whole with BLAKE3 against
//! the signed whole-image hash, as the installer does.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::Instant;

use skerry_chunks::{chunk_hash, IndexHead};
use skerry_release::Repository;

use crate::Error;

/// Returns the seconds the loop took for the repository's only release.
pub fn run(repo: &Repository, out: &Path) -> Result<f64, Error> {
    let find = |suffix: &str| -> Result<std::path::PathBuf, Error> {
        let dir = repo.targets_dir().join("bench/1.0.0");
        for e in std::fs::read_dir(&dir)? {
            let p = e?.path();
            if p.to_string_lossy().ends_with(suffix) {
                return Ok(p);
            }
        }
        Err(format!("no {suffix} in {}", dir.display()).into())
    };
    let signed_blake3 = signed_image_blake3(repo)?;
    let index = std::fs::read(find(".image.idx")?)?;
    let pages = u32::from_le_bytes(index[60..64].try_into()?) as usize;
    let head = IndexHead::decode(&index[..80 + 96 * pages])?;
    let mut entries = Vec::new();
    for (i, p) in head.pages.iter().enumerate() {
        let at = p.body_offset as usize;
        entries.extend(head.decode_page(i, &index[at..at + p.body_len as usize])?);
    }

    let started = Instant::now();
    let mut pack = BufReader::with_capacity(1 << 20, File::open(find(".image.pack")?)?);
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(out)?;
    let mut dec = zstd::bulk::Decompressor::new()?;
    let mut comp = Vec::new();
    let mut seen: HashMap<[u8; 16], u64> = HashMap::new();
    let mut repeat = vec![0u8; head.params.max as usize];
    let mut offset = 0u64;
    for e in &entries {
        let data: Vec<u8> = if e.comp_len > 0 {
            comp.resize(e.comp_len as usize, 0);
            pack.read_exact(&mut comp)?;
            dec.decompress(&comp, e.len as usize)?
        } else {
            let at = *seen.get(&e.hash).ok_or("repeat before first")?;
            file.read_exact_at(&mut repeat[..e.len as usize], at)?;
            repeat[..e.len as usize].to_vec()
        };
        if chunk_hash(&data) != e.hash {
            return Err("floor: chunk hash mismatch".into());
        }
        seen.entry(e.hash).or_insert(offset);
        file.write_all(&data)?;
        offset += u64::from(e.len);
    }
    file.sync_all()?;
    rustix::fs::fadvise(&file, 0, None, rustix::fs::Advice::DontNeed)?;
    file.seek(SeekFrom::Start(0))?;
    let mut whole = blake3::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        whole.update(&buf[..n]);
    }
    if whole.finalize().to_hex().as_str() != signed_blake3 {
        return Err("floor: read-back BLAKE3 differs from the signed one".into());
    }
    Ok(started.elapsed().as_secs_f64())
}

/// The release's signed whole-image BLAKE3 (hex).
fn signed_image_blake3(repo: &Repository) -> Result<String, Error> {
    let current = repo.current()?;
    let target = current
        .targets
        .signed
        .targets
        .get("bench/1.0.0/image.idx")
        .ok_or("no bench/1.0.0/image.idx target")?;
    let custom = target
        .custom
        .as_ref()
        .ok_or("the index target has no custom")?;
    Ok(custom["skerry"]["image_blake3"]
        .as_str()
        .ok_or("the release has no image_blake3")?
        .to_string())
}
