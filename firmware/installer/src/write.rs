//! The one-pass writer and its read-back.
//!
//! Three threads share the work: a fetch thread streams the pack ranges (adjacent
//! missing chunks merged into one range request) and the patch pack's, decompresses
//! each chunk or applies each patch to its base region read from the seed, and verifies
//! it (a patch that fails gives way to its full chunk);
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

use std::sync::atomic::{AtomicU64, Ordering};

use skerry_chunks::chunk_hash;
use skerry_chunks::patch::apply_patch;

use crate::budget::ByteBudget;
use crate::error::InstallError;
use crate::install::Progress;
use crate::patches::PlannedPatch;
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
    /// Chunks planned as patches (those whose patch failed came whole: `patch_fallbacks`).
    pub chunks_patched: u64,
    pub patch_fallbacks: u64,
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
    let patch_fallbacks = AtomicU64::new(0);
    let seed_for_patches = seed_file.as_ref().map(|(f, _)| f);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            fetch_chunks(
                plan,
                fetcher,
                pack_path,
                seed_for_patches,
                tx,
                &budget,
                &patch_fallbacks,
            )
        });
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
        outcome.patch_fallbacks = patch_fallbacks.load(Ordering::Relaxed);
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
            Source::Pack { .. } | Source::Patch { .. } => {
                fetched = rx.recv().unwrap_or_else(|_| {
                    Err(InstallError::BadChunk {
                        chunk: i,
                        reason: "the fetch thread stopped".into(),
                    })
                })?;
                if matches!(op.source, Source::Patch { .. }) {
                    out.chunks_patched += 1;
                } else {
                    out.chunks_fetched += 1;
                }
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

/// One file the fetch thread reads from (the pack, or the patch pack), item by item in
/// image order: a run of items adjacent in the file is one range request; from a
/// server that ignores ranges (each request costs the whole file), one request for all
/// the rest, skipping the gaps: never more than one full download.
struct Lane<'a> {
    fetcher: &'a Fetcher,
    path: &'a str,
    /// (offset, length) of each item, in image order.
    items: Vec<(u64, u32)>,
    next: usize,
    run_end: usize,
    stream: Option<crate::transport::RangeStream>,
    at: u64,
}

impl<'a> Lane<'a> {
    fn new(fetcher: &'a Fetcher, path: &'a str, items: Vec<(u64, u32)>) -> Self {
        Self {
            fetcher,
            path,
            items,
            next: 0,
            run_end: 0,
            stream: None,
            at: 0,
        }
    }

    /// Reads the next item into `buf`.
    fn read(&mut self, buf: &mut Vec<u8>) -> Result<(), InstallError> {
        let k = self.next;
        let Some(&(offset, len)) = self.items.get(k) else {
            return Err(InstallError::BadChunk {
                chunk: k,
                reason: "the plan asked for more items than it listed".into(),
            });
        };
        self.next += 1;
        if k >= self.run_end || self.stream.is_none() {
            let one_pass = self.fetcher.ranges_ignored();
            let mut end = offset + u64::from(len);
            let mut last = k + 1;
            while let Some(&(o, l)) = self.items.get(last) {
                if o != end && !(one_pass && o > end) {
                    break;
                }
                end = o + u64::from(l);
                last += 1;
            }
            self.stream = Some(self.fetcher.stream(self.path, offset, end - offset));
            self.at = offset;
            self.run_end = last;
        }
        buf.resize(len as usize, 0);
        let gap = offset - self.at;
        self.at = offset + u64::from(len);
        let Some(stream) = self.stream.as_mut() else {
            return Err(InstallError::BadChunk {
                chunk: k,
                reason: "no stream".into(),
            });
        };
        let read = std::io::copy(&mut stream.take(gap), &mut std::io::sink())
            .and_then(|_| stream.read_exact(buf));
        read.map_err(|e| {
            // The next item starts a new request.
            self.stream = None;
            fetch_error(self.fetcher, self.path, e)
        })
    }
}

/// Streams every fetched chunk of `ops` (full from the pack, or patched against the
/// seed) in order into `tx`, verified.
fn fetch_chunks(
    plan: &Plan,
    fetcher: &Fetcher,
    pack_path: &str,
    seed: Option<&File>,
    tx: SyncSender<Fetched>,
    budget: &ByteBudget,
    patch_fallbacks: &AtomicU64,
) {
    let ops = &plan.ops;
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
    let mut full = Vec::new();
    let mut patched = Vec::new();
    for op in ops {
        match op.source {
            Source::Pack { offset, comp_len } => full.push((offset, comp_len)),
            Source::Patch { patch, .. } => {
                if let Some(p) = plan.patches.as_ref().and_then(|p| p.patches.get(patch)) {
                    patched.push((p.patch_offset, p.patch_len));
                }
            }
            _ => {}
        }
    }
    let patch_path = plan.patches.as_ref().map_or("", |p| p.pack_path.as_str());
    let mut pack = Lane::new(fetcher, pack_path, full);
    let mut patch_lane = Lane::new(fetcher, patch_path, patched);
    let image_offsets = image_offsets(ops);
    let mut comp = Vec::new();
    let mut dict = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        let result = match op.source {
            Source::Pack { offset, comp_len } => {
                pack.read(&mut comp)
                    .and_then(|()| match unpack(&mut decompressor, &comp, op, i) {
                        Err(InstallError::TamperedChunk { .. })
                        | Err(InstallError::BadChunk { .. }) => refetch(
                            fetcher,
                            &mut decompressor,
                            pack_path,
                            (offset, comp_len),
                            op,
                            i,
                            image_offsets[i],
                        ),
                        other => other,
                    })
            }
            Source::Patch {
                pack_offset,
                comp_len,
                patch,
            } => {
                let planned = plan.patches.as_ref().and_then(|p| p.patches.get(patch));
                let applied = match planned {
                    Some(pp) => patch_lane
                        .read(&mut comp)
                        .and_then(|()| apply_planned(pp, &comp, seed, &mut dict, op, i)),
                    None => Err(InstallError::BadChunk {
                        chunk: i,
                        reason: "the plan names a patch it does not hold".into(),
                    }),
                };
                match applied {
                    Ok(data) => Ok(data),
                    // A patch that does not give the chunk (tampered, made against
                    // other bytes, or a seed that changed): the full chunk instead.
                    Err(_) => {
                        patch_fallbacks.fetch_add(1, Ordering::Relaxed);
                        refetch(
                            fetcher,
                            &mut decompressor,
                            pack_path,
                            (pack_offset, comp_len),
                            op,
                            i,
                            image_offsets[i],
                        )
                    }
                }
            }
            _ => continue,
        };
        let failed = result.is_err();
        let held = result.as_ref().map_or(0, |data| data.len() as u64);
        if !budget.take(held) || tx.send(result).is_err() || failed {
            return;
        }
    }
}

/// Applies a planned patch: reads the base region from the seed and checks each of its
/// chunks against its name, then decodes (bounded) and checks the result against the
/// chunk's name.
fn apply_planned(
    pp: &PlannedPatch,
    patch: &[u8],
    seed: Option<&File>,
    dict: &mut Vec<u8>,
    op: &Op,
    chunk: usize,
) -> Result<Vec<u8>, InstallError> {
    let bad = |reason: String| InstallError::BadChunk { chunk, reason };
    let Some(seed) = seed else {
        return Err(bad("no seed holds the patch's base".into()));
    };
    // Bounded: at most MAX_PATCH_BASE_CHUNKS seed chunks of at most the index's maximum
    // chunk length each (checked when the patch index and the head were decoded).
    dict.resize(pp.base_len() as usize, 0);
    seed.read_exact_at(dict, pp.base_offset)
        .map_err(|e| bad(format!("reading the patch's base from the seed: {e}")))?;
    let mut at = 0usize;
    for &(hash, len) in &pp.base {
        let end = at + len as usize;
        if dict.get(at..end).map(chunk_hash) != Some(hash) {
            return Err(bad("the seed no longer holds the patch's base".into()));
        }
        at = end;
    }
    apply_patch(patch, dict, &op.hash, op.len).map_err(|e| bad(e.to_string()))
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

/// A chunk arrived damaged (or its patch failed): fetch it alone again a few times
/// before giving up.
fn refetch(
    fetcher: &Fetcher,
    decompressor: &mut zstd::bulk::Decompressor<'_>,
    pack_path: &str,
    (offset, comp_len): (u64, u32),
    op: &Op,
    chunk: usize,
    image_offset: u64,
) -> Result<Vec<u8>, InstallError> {
    let comp_len = u64::from(comp_len);
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
