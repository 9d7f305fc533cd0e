//! The one-pass writer and its read-back.
//!
//! Three threads share the work: a fetch thread streams the pack ranges (adjacent
//! missing chunks merged into one range request), decompresses and verifies each chunk;
//! the writing thread takes chunks in image order from a bounded queue (or from the
//! seed, or from a repeat already written) and writes the slot sequentially; every
//! 32 MiB a read-back thread flushes the slot (`fdatasync`), drops the flushed region
//! from the page cache (`posix_fadvise(DONTNEED)`, so the read comes from the medium, not
//! from memory; direct I/O would fail on tmpfs), reads it back, checks each chunk against
//! its signed hash and feeds the whole-image BLAKE3. So the disk writes while the CPU
//! decompresses, and the whole image is verified as read back from the medium, against
//! the signed whole-image hash, without a second pass.
//! Memory stays bounded by a byte budget on the chunks in flight.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

use skerry_chunks::chunk_hash;

use crate::budget::ByteBudget;
use crate::error::InstallError;
use crate::install::Progress;
use crate::plan::{Op, Plan, Source};
use crate::transport::Fetcher;

/// Bytes of decompressed chunks in flight between the fetch thread and the writer.
const IN_FLIGHT_BYTES: u64 = 4 * 1024 * 1024;
/// Chunks in flight at most (the byte budget is the real bound; this caps the queue's
/// bookkeeping when chunks are tiny).
const QUEUE_DEPTH: usize = 1024;
/// Bytes written between two flushes (each flushed region is read back and hashed).
const FLUSH_STEP: u64 = 32 * 1024 * 1024;
/// Times a chunk that fails its hash is fetched again before the install fails.
const CHUNK_ATTEMPTS: u32 = 3;

/// What the write pass did.
#[derive(Debug, Clone, Copy, Default)]
pub struct WriteOutcome {
    pub bytes_written: u64,
    pub chunks_fetched: u64,
    pub chunks_reused: u64,
    /// BLAKE3 of the whole slot as read back from the medium (equal to the signed one).
    pub blake3: [u8; 32],
}

/// Opens the slot for writing and checks it can hold `needed` bytes: a block device
/// holds its size, a regular file holds `declared` bytes (the partition size from the
/// board definition) or grows when none is declared.
pub fn open_slot(path: &Path, needed: u64, declared: Option<u64>) -> Result<File, InstallError> {
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(InstallError::io("open the slot", path))?;
    let meta = file
        .metadata()
        .map_err(InstallError::io("inspect the slot", path))?;
    let device = if meta.file_type().is_block_device() {
        let end = file
            .seek(SeekFrom::End(0))
            .map_err(InstallError::io("size the slot", path))?;
        file.seek(SeekFrom::Start(0))
            .map_err(InstallError::io("rewind the slot", path))?;
        Some(end)
    } else {
        None
    };
    let capacity = match (device, declared) {
        (Some(d), Some(c)) => Some(d.min(c)),
        (d, c) => d.or(c),
    };
    if let Some(capacity) = capacity.filter(|&c| c < needed) {
        return Err(InstallError::SlotTooSmall {
            path: path.into(),
            capacity,
            needed,
        });
    }
    Ok(file)
}

use std::os::unix::fs::FileTypeExt;

/// Writes the image into `slot` following `plan`, flushes it, and checks every chunk
/// and the whole image (`signed_blake3`) as read back from the medium.
#[expect(
    clippy::too_many_arguments,
    reason = "one call site, each argument named"
)]
pub fn write_slot(
    plan: &Plan,
    signed_blake3: [u8; 32],
    fetcher: &Fetcher,
    pack_path: &str,
    seed: Option<&Path>,
    slot_path: &Path,
    slot_size: Option<u64>,
    progress: &dyn Progress,
) -> Result<WriteOutcome, InstallError> {
    let mut slot = open_slot(slot_path, plan.head.image_len, slot_size)?;
    let readback =
        File::open(slot_path).map_err(InstallError::io("read back the slot", slot_path))?;
    let seed_file = match seed {
        Some(p) => Some((
            File::open(p).map_err(InstallError::io("open the seed", p))?,
            p,
        )),
        None => None,
    };
    progress.phase("writing", plan.head.image_len);
    let (tx, rx) = sync_channel(QUEUE_DEPTH);
    let (flushed_tx, flushed_rx) = sync_channel(4);
    let budget = ByteBudget::new(IN_FLIGHT_BYTES);
    std::thread::scope(|scope| {
        scope.spawn(|| fetch_chunks(&plan.ops, fetcher, pack_path, tx, &budget));
        let verifier = scope.spawn(|| read_back(&readback, slot_path, &plan.ops, flushed_rx));
        // Dropping the receiver and the sender (inside write_chunks) stops both helpers.
        let written = write_chunks(
            plan,
            (rx, &budget),
            seed_file.as_ref(),
            &mut slot,
            slot_path,
            flushed_tx,
            progress,
        );
        // The writer is done: a fetch thread waiting for room stops.
        budget.close();
        let read = verifier.join().unwrap_or_else(|_| {
            Err(InstallError::ReadBack {
                path: slot_path.into(),
                chunk: 0,
                offset: 0,
            })
        });
        let mut outcome = written?;
        let measured = read?;
        if measured != signed_blake3 {
            return Err(InstallError::ImageMismatch {
                path: slot_path.into(),
                signed: hex::encode(signed_blake3),
                measured: hex::encode(measured),
            });
        }
        outcome.blake3 = measured;
        Ok(outcome)
    })
}

/// Flushes the slot up to each offset the writer reports, drops that region from the
/// page cache, reads every chunk of it back from the medium, checks it against its
/// signed hash and hashes it into the whole-image BLAKE3, which it returns: the whole
/// image is verified as read back, while the disk writes and the CPU decompresses the
/// next region.
fn read_back(
    file: &File,
    path: &Path,
    ops: &[Op],
    written: Receiver<u64>,
) -> Result<[u8; 32], InstallError> {
    let max = ops.iter().map(|op| op.len).max().unwrap_or(0) as usize;
    let mut buf = vec![0u8; max];
    let mut whole = blake3::Hasher::new();
    let (mut next, mut offset) = (0usize, 0u64);
    let mut dropped = 0u64;
    for upto in written {
        file.sync_data()
            .map_err(InstallError::io("flush the slot", path))?;
        dropped = drop_cached(file, path, dropped, upto)?;
        while let Some(op) = ops.get(next) {
            let end = offset + u64::from(op.len);
            if end > upto {
                break;
            }
            let data = &mut buf[..op.len as usize];
            file.read_exact_at(data, offset)
                .map_err(InstallError::io("read back the slot", path))?;
            if chunk_hash(data) != op.hash {
                return Err(InstallError::ReadBack {
                    path: path.into(),
                    chunk: next,
                    offset,
                });
            }
            whole.update(data);
            next += 1;
            offset = end;
        }
    }
    if next != ops.len() {
        return Err(InstallError::ReadBack {
            path: path.into(),
            chunk: next,
            offset,
        });
    }
    Ok(whole.finalize().into())
}

/// Drops the flushed bytes `from..upto` from the page cache, so reading them back asks
/// the medium. The page holding `upto` may be dirty again (the writer went on), and
/// dirty pages stay cached, so the next call starts from that page. Returns that start.
fn drop_cached(file: &File, path: &Path, from: u64, upto: u64) -> Result<u64, InstallError> {
    const PAGE: u64 = 4096;
    if let Some(len) = std::num::NonZeroU64::new(upto.saturating_sub(from)) {
        rustix::fs::fadvise(file, from, Some(len), rustix::fs::Advice::DontNeed)
            .map_err(|e| InstallError::io("drop the page cache of", path)(e.into()))?;
        // Ask the medium for the whole region at once (large sequential reads), rather
        // than chunk by chunk; the bytes still come from the medium, not from memory.
        rustix::fs::fadvise(file, from, Some(len), rustix::fs::Advice::WillNeed)
            .map_err(|e| InstallError::io("read ahead", path)(e.into()))?;
    }
    Ok(upto / PAGE * PAGE)
}

type Fetched = Result<Vec<u8>, InstallError>;

fn write_chunks(
    plan: &Plan,
    (rx, budget): (Receiver<Fetched>, &ByteBudget),
    seed: Option<&(File, &Path)>,
    slot: &mut File,
    slot_path: &Path,
    flushed: SyncSender<u64>,
    progress: &dyn Progress,
) -> Result<WriteOutcome, InstallError> {
    let mut out = WriteOutcome::default();
    let mut next_flush = FLUSH_STEP;
    let mut buf = vec![0u8; plan.head.params.max as usize];
    let mut offset = 0u64;
    for (i, op) in plan.ops.iter().enumerate() {
        let len = op.len as usize;
        let fetched;
        let mut from_pack = 0;
        let data: &[u8] = match op.source {
            Source::Pack { .. } => {
                fetched = rx.recv().unwrap_or_else(|_| {
                    Err(InstallError::BadChunk {
                        chunk: i,
                        reason: "the fetch thread stopped".into(),
                    })
                })?;
                out.chunks_fetched += 1;
                // Its bytes leave the budget once written (below).
                from_pack = fetched.len() as u64;
                &fetched
            }
            Source::Seed { offset: at } => {
                let Some((file, path)) = seed else {
                    return Err(InstallError::SeedChanged {
                        path: Default::default(),
                        offset: at,
                    });
                };
                file.read_exact_at(&mut buf[..len], at)
                    .map_err(InstallError::io("read the seed", *path))?;
                if chunk_hash(&buf[..len]) != op.hash {
                    return Err(InstallError::SeedChanged {
                        path: path.to_path_buf(),
                        offset: at,
                    });
                }
                out.chunks_reused += 1;
                &buf[..len]
            }
            Source::Slot { offset: at } => {
                slot.read_exact_at(&mut buf[..len], at)
                    .map_err(InstallError::io("read back the slot", slot_path))?;
                if chunk_hash(&buf[..len]) != op.hash {
                    return Err(InstallError::ReadBack {
                        path: slot_path.into(),
                        chunk: i,
                        offset: at,
                    });
                }
                out.chunks_reused += 1;
                &buf[..len]
            }
        };
        slot.write_all(data)
            .map_err(InstallError::io("write the slot", slot_path))?;
        budget.give(from_pack);
        offset += len as u64;
        progress.advance(len as u64);
        if offset >= next_flush {
            next_flush = offset + FLUSH_STEP;
            // The read-back thread stopped only if it failed; its error is reported.
            if flushed.send(offset).is_err() {
                break;
            }
        }
    }
    slot.sync_all()
        .map_err(InstallError::io("flush the slot", slot_path))?;
    let _ = flushed.send(offset);
    out.bytes_written = offset;
    Ok(out)
}

/// Streams every pack chunk of `ops` in order into `tx`, verified.
fn fetch_chunks(
    ops: &[Op],
    fetcher: &Fetcher,
    pack_path: &str,
    tx: SyncSender<Fetched>,
    budget: &ByteBudget,
) {
    let mut decompressor = match zstd::bulk::Decompressor::new() {
        Ok(d) => d,
        Err(e) => {
            let _ = tx.send(Err(InstallError::BadChunk {
                chunk: 0,
                reason: e.to_string(),
            }));
            return;
        }
    };
    let packed: Vec<(usize, &Op, u64, u32)> = ops
        .iter()
        .enumerate()
        .filter_map(|(i, op)| match op.source {
            Source::Pack { offset, comp_len } => Some((i, op, offset, comp_len)),
            _ => None,
        })
        .collect();
    let image_offsets = image_offsets(ops);
    let mut k = 0;
    let mut comp = Vec::new();
    while k < packed.len() {
        // One range request for a run of adjacent chunks in the pack; from a server
        // that ignores ranges (each request costs the whole pack), one request for all
        // the rest, skipping the gaps: never more than one full download.
        let one_pass = fetcher.ranges_ignored();
        let start = packed[k].2;
        let mut end = start + u64::from(packed[k].3);
        let mut last = k + 1;
        while last < packed.len() && (packed[last].2 == end || (one_pass && packed[last].2 > end)) {
            end = packed[last].2 + u64::from(packed[last].3);
            last += 1;
        }
        let mut stream = fetcher.stream(pack_path, start, end - start);
        let mut at = start;
        for &(i, op, offset, comp_len) in &packed[k..last] {
            comp.resize(comp_len as usize, 0);
            let gap = offset - at;
            at = offset + u64::from(comp_len);
            let result = std::io::copy(&mut (&mut stream).take(gap), &mut std::io::sink())
                .and_then(|_| stream.read_exact(&mut comp))
                .map_err(|e| fetch_error(fetcher, pack_path, e))
                .and_then(|()| {
                    let first = unpack(&mut decompressor, &comp, op, i);
                    match first {
                        Err(InstallError::TamperedChunk { .. })
                        | Err(InstallError::BadChunk { .. }) => refetch(
                            fetcher,
                            &mut decompressor,
                            pack_path,
                            offset,
                            op,
                            i,
                            image_offsets[i],
                        ),
                        other => other,
                    }
                });
            let failed = result.is_err();
            let held = result.as_ref().map_or(0, |data| data.len() as u64);
            if !budget.take(held) || tx.send(result).is_err() || failed {
                return;
            }
        }
        k = last;
    }
}

fn image_offsets(ops: &[Op]) -> Vec<u64> {
    let mut at = 0u64;
    ops.iter()
        .map(|op| {
            let here = at;
            at += u64::from(op.len);
            here
        })
        .collect()
}

fn fetch_error(fetcher: &Fetcher, path: &str, e: std::io::Error) -> InstallError {
    let source = match e
        .into_inner()
        .map(|inner| inner.downcast::<crate::transport::FetchError>())
    {
        Some(Ok(fetch)) => *fetch,
        Some(Err(other)) => crate::transport::FetchError::Io {
            url: fetcher.url(path),
            source: std::io::Error::other(other.to_string()),
        },
        None => crate::transport::FetchError::Io {
            url: fetcher.url(path),
            source: std::io::Error::other("read failed"),
        },
    };
    InstallError::Fetch {
        what: "the image pack".into(),
        source,
    }
}

/// Decompresses and verifies one chunk.
fn unpack(
    decompressor: &mut zstd::bulk::Decompressor<'_>,
    comp: &[u8],
    op: &Op,
    chunk: usize,
) -> Result<Vec<u8>, InstallError> {
    let data = decompressor
        .decompress(comp, op.len as usize)
        .map_err(|e| InstallError::BadChunk {
            chunk,
            reason: e.to_string(),
        })?;
    if data.len() != op.len as usize || chunk_hash(&data) != op.hash {
        return Err(InstallError::TamperedChunk {
            chunk,
            offset: 0,
            attempts: 1,
        });
    }
    Ok(data)
}

/// A chunk arrived damaged: fetch it alone again a few times before giving up.
fn refetch(
    fetcher: &Fetcher,
    decompressor: &mut zstd::bulk::Decompressor<'_>,
    pack_path: &str,
    offset: u64,
    op: &Op,
    chunk: usize,
    image_offset: u64,
) -> Result<Vec<u8>, InstallError> {
    let comp_len = match op.source {
        Source::Pack { comp_len, .. } => u64::from(comp_len),
        _ => 0,
    };
    for _ in 1..CHUNK_ATTEMPTS {
        let comp = fetcher
            .get_range(pack_path, offset, comp_len)
            .map_err(|source| InstallError::Fetch {
                what: "the image pack".into(),
                source,
            })?;
        if let Ok(data) = unpack(decompressor, &comp, op, chunk) {
            return Ok(data);
        }
    }
    Err(InstallError::TamperedChunk {
        chunk,
        offset: image_offset,
        attempts: CHUNK_ATTEMPTS,
    })
}
