//! [`FileLog`]: an append-only log of resource changes in one file, written through a
//! [`Directory`] (the host's, or in tests the lossy page-cache model of
//! `skerry-medium`).
//!
//! Format of `state.log`: the header `SKERRYLOG1\n`, then records, each
//! `[payload length: u32 LE][CRC-32 of payload: u32 LE][payload: JSON]`, where the
//! payload is `{"Put": PersistedResource}` or `{"Remove": ResourceKey}`.
//!
//! Crash and power-loss safety: an append is written at the end of the file and, with
//! [`Durability::Fsync`], synced before the write returns, so at most the last record
//! can be incomplete after a cut (lost, or torn at any sector). Opening drops such a
//! torn tail: a record that fails its frame or CRC check with no valid record after
//! it. A bad record *followed* by a valid one cannot come from a torn append: it is
//! corruption in the middle of the log, and opening fails with
//! [`BackendError::Corrupt`] rather than silently dropping every later write.
//!
//! Compaction rewrites the live records through the workspace's one atomic file write
//! ([`skerry_medium::replace_file`]: temp file, sync, rename, directory sync); a
//! crash before the rename leaves the old log (the temp file is deleted at the next
//! open), a crash after it the new one. The write that makes the log large and mostly
//! dead is itself written as the compaction (the new file includes it), so it needs no
//! append and fsync of its own. A compaction that fails before its rename falls back
//! to appending that write, so it never fails a write that could be made durable; the
//! failure is kept for [`FileLog::compaction_failure`] and retried once the log grew.
//! The log holds no open file handle: every append goes to the file the name points to
//! now, so a compaction that replaced the file can never leave appends going to the
//! deleted one. If a failed compaction leaves the log unsure which file is durable
//! (renamed, but the directory sync failed twice), that write fails and further writes
//! are refused until the log is reopened.
//!
//! The power-loss test (`tests/power_loss.rs`) runs the log on the lossy model and
//! shows that every flush it does is needed.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use skerry_medium::{Directory, HostDir, MediumError};

use super::{Backend, PersistedResource};
use crate::error::BackendError;
use crate::resource::ResourceKey;

const HEADER: &[u8] = b"SKERRYLOG1\n";
const FRAME: usize = 8;
/// Larger lengths can only come from a torn or corrupt length field.
const MAX_RECORD: usize = 64 << 20;
/// The largest log we read into memory at open (config-sized data is far below).
const MAX_LOG: u64 = 1 << 30;
const LOG_NAME: &str = "state.log";
const TMP_NAME: &str = "state.log.tmp";

/// When a write counts as done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// After `fsync`: survives power loss.
    Fsync,
    /// After `write`: survives a crash of the process, not of the machine.
    ProcessCrash,
}

/// What opening the log found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Complete records read.
    pub records: u64,
    /// Bytes of a torn tail that were cut off.
    pub truncated_bytes: u64,
    /// Whether an unfinished compaction's temp file was deleted.
    pub discarded_compaction: bool,
}

/// A record with the payload bytes it was decoded from.
type Framed = (Vec<u8>, Record);

#[derive(Serialize, Deserialize)]
enum Record {
    Put(PersistedResource),
    Remove(ResourceKey),
}

/// An append-only, CRC-framed log of persistent resources in a directory.
#[derive(Debug)]
pub struct FileLog<D: Directory = HostDir> {
    dir: D,
    path: PathBuf,
    len: u64,
    /// Encoded `Put` payload of every live resource: what compaction writes.
    live: BTreeMap<ResourceKey, Vec<u8>>,
    live_bytes: u64,
    durability: Durability,
    compact_above: u64,
    /// After a failed compaction, the next one waits until the log reaches this size.
    next_compaction: u64,
    compaction_failure: Option<String>,
    recovery: Recovery,
    loaded: Option<Vec<PersistedResource>>,
    /// Why further writes are refused (an append that could not be undone, a
    /// compaction that left the durable file unknown); reopening clears it.
    poisoned: Option<&'static str>,
}

fn name(name: &str) -> &OsStr {
    OsStr::new(name)
}

fn medium(source: MediumError) -> BackendError {
    BackendError::Medium { source }
}

impl FileLog<HostDir> {
    /// Opens (or creates) the log in `dir`, recovering from a torn tail.
    pub fn open(dir: &Path) -> Result<Self, BackendError> {
        Self::open_with(dir, Durability::Fsync, 1 << 20)
    }

    /// Opens with a durability level and the log size above which it compacts (when
    /// more than half of it is dead records).
    pub fn open_with(
        dir: &Path,
        durability: Durability,
        compact_above: u64,
    ) -> Result<Self, BackendError> {
        std::fs::create_dir_all(dir).map_err(|source| BackendError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        Self::open_in(HostDir::new(dir), durability, compact_above)
    }
}

impl<D: Directory> FileLog<D> {
    /// Opens (or creates) the log in any directory.
    pub fn open_in(
        mut dir: D,
        durability: Durability,
        compact_above: u64,
    ) -> Result<Self, BackendError> {
        let path = dir.path().join(LOG_NAME);
        let mut recovery = Recovery::default();
        if dir.exists(name(TMP_NAME)) {
            dir.remove(name(TMP_NAME)).map_err(medium)?;
            recovery.discarded_compaction = true;
        }
        if !dir.exists(name(LOG_NAME)) {
            write_atomically(&mut dir, name(LOG_NAME), HEADER)?;
        }
        let size = dir.len(name(LOG_NAME)).map_err(medium)?;
        if size > MAX_LOG {
            return Err(medium(MediumError::TooLarge {
                path,
                len: size,
                limit: MAX_LOG,
            }));
        }
        // Bounded by MAX_LOG above, so it fits in usize on every target we build for.
        let bytes = dir
            .read_at(name(LOG_NAME), 0, size as usize)
            .map_err(medium)?;
        if !bytes.starts_with(HEADER) {
            return Err(BackendError::BadHeader { path });
        }
        let (records, good_len) = parse(&path, &bytes)?;
        recovery.records = records.len() as u64;
        if good_len < bytes.len() {
            recovery.truncated_bytes = (bytes.len() - good_len) as u64;
            dir.set_len(name(LOG_NAME), good_len as u64)
                .and_then(|()| dir.sync_file(name(LOG_NAME)))
                .map_err(medium)?;
        }
        let mut live = BTreeMap::new();
        for (payload, record) in records {
            match record {
                Record::Put(resource) => {
                    live.insert(resource.metadata.key(), payload);
                }
                Record::Remove(key) => {
                    live.remove(&key);
                }
            }
        }
        let mut loaded = Vec::with_capacity(live.len());
        for payload in live.values() {
            if let Ok(Record::Put(resource)) = serde_json::from_slice::<Record>(payload) {
                loaded.push(resource);
            }
        }
        let live_bytes = live.values().map(|p| (p.len() + FRAME) as u64).sum();
        Ok(FileLog {
            dir,
            path,
            len: good_len as u64,
            live,
            live_bytes,
            durability,
            compact_above,
            next_compaction: 0,
            compaction_failure: None,
            recovery,
            loaded: Some(loaded),
            poisoned: None,
        })
    }

    /// What opening found.
    pub fn recovery(&self) -> Recovery {
        self.recovery
    }

    /// The log file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Current size of the log file in bytes.
    pub fn len_bytes(&self) -> u64 {
        self.len
    }

    /// Why the last compaction failed, if it did (cleared by the next one that works).
    /// The writes themselves were durable; the log only stays larger.
    pub fn compaction_failure(&self) -> Option<&str> {
        self.compaction_failure.as_deref()
    }

    fn append(&mut self, payload: &[u8]) -> Result<(), BackendError> {
        if let Some(reason) = self.poisoned {
            return Err(BackendError::Poisoned {
                path: self.path.clone(),
                reason,
            });
        }
        let mut frame = Vec::with_capacity(FRAME + payload.len());
        frame.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        frame.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
        frame.extend_from_slice(payload);
        let log = name(LOG_NAME);
        let written =
            self.dir
                .write_at(log, self.len, &frame)
                .and_then(|()| match self.durability {
                    Durability::Fsync => self.dir.sync_file(log),
                    Durability::ProcessCrash => Ok(()),
                });
        if let Err(source) = written {
            // Cut off whatever part of the record made it, so later appends are not
            // hidden behind a torn record.
            if self.dir.set_len(log, self.len).is_err() {
                self.poisoned = Some("an earlier append failed and could not be undone");
            }
            return Err(medium(source));
        }
        self.len += frame.len() as u64;
        Ok(())
    }

    /// Replaces `key`'s live payload (`None`: removed); returns the old one.
    fn set_live(&mut self, key: &ResourceKey, payload: Option<Vec<u8>>) -> Option<Vec<u8>> {
        let old = match payload {
            Some(payload) => {
                self.live_bytes += (payload.len() + FRAME) as u64;
                self.live.insert(key.clone(), payload)
            }
            None => self.live.remove(key),
        };
        if let Some(old) = &old {
            self.live_bytes -= (old.len() + FRAME) as u64;
        }
        old
    }

    /// Records one change: `payload` is the record to append, `live` the resource's
    /// live payload afterwards (`None` once it is removed).
    ///
    /// When the log would be large and mostly dead after this record, the change is
    /// written as a compaction instead: the new file holds every live record, this one
    /// included, and its atomic replacement is what makes the write durable (appending
    /// and fsyncing first would be a flush nobody needs). A compaction that fails
    /// before its rename falls back to the append; the failure is kept for
    /// [`FileLog::compaction_failure`] and the next attempt waits for the log to grow.
    fn record(
        &mut self,
        key: &ResourceKey,
        payload: &[u8],
        live: Option<Vec<u8>>,
    ) -> Result<(), BackendError> {
        if let Some(reason) = self.poisoned {
            return Err(BackendError::Poisoned {
                path: self.path.clone(),
                reason,
            });
        }
        let before = self.set_live(key, live);
        let after_append = self.len + (FRAME + payload.len()) as u64;
        let compact = after_append > self.compact_above
            && after_append >= self.next_compaction
            && after_append > 2 * (self.live_bytes + HEADER.len() as u64);
        let written = if compact {
            self.compact().or_else(|error| match error {
                // The old log is still the durable one: append to it instead.
                CompactionError::NotReplaced => self.append(payload),
                CompactionError::Unsure(source) => Err(source),
            })
        } else {
            self.append(payload)
        };
        if written.is_err() {
            self.set_live(key, before);
        }
        written
    }

    /// Writes the live records as the new log.
    fn compact(&mut self) -> Result<(), CompactionError> {
        let mut bytes = Vec::with_capacity(self.live_bytes as usize + HEADER.len());
        bytes.extend_from_slice(HEADER);
        for payload in self.live.values() {
            bytes.extend_from_slice(&(payload.len() as u32).to_le_bytes());
            bytes.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
            bytes.extend_from_slice(payload);
        }
        let compacted_len = bytes.len() as u64;
        let Err(error) = write_atomically(&mut self.dir, name(LOG_NAME), &bytes) else {
            self.len = compacted_len;
            self.compaction_failure = None;
            self.next_compaction = 0;
            return Ok(());
        };
        self.compaction_failure = Some(error.to_string());
        self.next_compaction = self.len.saturating_add(self.compact_above);
        self.settle_after_failed_compaction(compacted_len, error)
    }

    /// Finds out which file the name points to after a failed compaction. The new
    /// file is always shorter than the old one (compaction only runs when more than
    /// half is dead), so the length tells them apart.
    fn settle_after_failed_compaction(
        &mut self,
        compacted_len: u64,
        error: BackendError,
    ) -> Result<(), CompactionError> {
        let log = name(LOG_NAME);
        match self.dir.len(log) {
            // The rename did not happen: the old log is in place and durable.
            Ok(len) if len == self.len => {
                let _ = self.dir.remove(name(TMP_NAME));
                Err(CompactionError::NotReplaced)
            }
            // The rename happened but may not be durable: if the old name came back
            // after a power cut, this write and every later one would be lost. Sync
            // again; if that fails too, stop writing.
            Ok(len) if len == compacted_len => {
                if self.dir.sync_dir().is_ok() {
                    self.len = compacted_len;
                    Ok(())
                } else {
                    self.poisoned =
                        Some("a compaction replaced the log but its directory could not be synced");
                    Err(CompactionError::Unsure(error))
                }
            }
            _ => {
                self.poisoned = Some("a failed compaction left the log in an unknown state");
                Err(CompactionError::Unsure(error))
            }
        }
    }
}

/// How a compaction failed.
enum CompactionError {
    /// The old log is still in place and durable.
    NotReplaced,
    /// The new log may or may not be the durable one; writes are refused from now on.
    Unsure(BackendError),
}

impl<D: Directory + Send + std::fmt::Debug> Backend for FileLog<D> {
    fn load(&mut self) -> Result<Vec<PersistedResource>, BackendError> {
        Ok(self.loaded.take().unwrap_or_default())
    }

    fn put(&mut self, record: &PersistedResource) -> Result<(), BackendError> {
        self.put_record(record)
    }

    fn remove(&mut self, key: &ResourceKey) -> Result<(), BackendError> {
        self.remove_record(key)
    }
}

impl<D: Directory> FileLog<D> {
    /// Records the new state of a resource (what [`Backend::put`] does; usable on
    /// directories that are not `Send`, such as the lossy model in tests).
    pub fn put_record(&mut self, record: &PersistedResource) -> Result<(), BackendError> {
        let key = record.metadata.key();
        let payload = serde_json::to_vec(&Record::Put(record.clone())).map_err(|source| {
            BackendError::Encode {
                key: key.clone(),
                source,
            }
        })?;
        self.record(&key, &payload, Some(payload.clone()))
    }

    /// Records that a resource was destroyed (what [`Backend::remove`] does).
    pub fn remove_record(&mut self, key: &ResourceKey) -> Result<(), BackendError> {
        let payload = serde_json::to_vec(&Record::Remove(key.clone())).map_err(|source| {
            BackendError::Encode {
                key: key.clone(),
                source,
            }
        })?;
        self.record(key, &payload, None)
    }

    /// The resources the log held when it was opened (what [`Backend::load`] gives).
    pub fn loaded(&mut self) -> Vec<PersistedResource> {
        self.loaded.take().unwrap_or_default()
    }
}

/// The payload of a well-formed record at `offset`: a non-empty length within our
/// limit, the whole payload present, and its CRC matching.
fn frame_at(bytes: &[u8], offset: usize) -> Option<&[u8]> {
    let frame = bytes.get(offset..offset.checked_add(FRAME)?)?;
    let len = u32::from_le_bytes([frame[0], frame[1], frame[2], frame[3]]) as usize;
    let crc = u32::from_le_bytes([frame[4], frame[5], frame[6], frame[7]]);
    // A zero length is never written (every payload is a JSON object); a zeroed
    // region (a lost sector the filesystem fills with zeros) would look like one.
    if len == 0 || len > MAX_RECORD {
        return None;
    }
    let start = offset + FRAME;
    let payload = bytes.get(start..start.checked_add(len)?)?;
    (crc32fast::hash(payload) == crc).then_some(payload)
}

/// The first offset after `from` holding a record we could have written.
fn next_valid_record(bytes: &[u8], from: usize) -> Option<usize> {
    (from + 1..bytes.len()).find(|&offset| {
        frame_at(bytes, offset).is_some_and(|p| serde_json::from_slice::<Record>(p).is_ok())
    })
}

/// Splits the log into records; returns them with their payloads and the length of
/// the valid prefix. A bad record ends the log only if nothing valid follows it (a
/// torn tail); otherwise, as for a record whose CRC holds but whose JSON does not
/// decode, the log is corrupt and opening fails.
fn parse(path: &Path, bytes: &[u8]) -> Result<(Vec<Framed>, usize), BackendError> {
    let mut records = Vec::new();
    let mut offset = HEADER.len();
    while offset < bytes.len() {
        let Some(payload) = frame_at(bytes, offset) else {
            if let Some(next) = next_valid_record(bytes, offset) {
                return Err(BackendError::Corrupt {
                    path: path.to_path_buf(),
                    offset: offset as u64,
                    next_valid: next as u64,
                });
            }
            break;
        };
        let record = serde_json::from_slice::<Record>(payload).map_err(|source| {
            BackendError::BadRecord {
                path: path.to_path_buf(),
                offset: offset as u64,
                source,
            }
        })?;
        records.push((payload.to_vec(), record));
        offset += FRAME + payload.len();
    }
    Ok((records, offset.min(bytes.len())))
}

/// Replaces `file` in `dir` through the workspace's one atomic write (temp file
/// `state.log.tmp`, which `open` cleans up; sync; rename; directory sync).
fn write_atomically<D: Directory>(
    dir: &mut D,
    file: &OsStr,
    bytes: &[u8],
) -> Result<(), BackendError> {
    skerry_medium::replace_file(dir, file, bytes).map_err(medium)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(payload: &[u8]) -> Vec<u8> {
        let mut bytes = (payload.len() as u32).to_le_bytes().to_vec();
        bytes.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
        bytes.extend_from_slice(payload);
        bytes
    }

    const REMOVE: &[u8] = br#"{"Remove":{"namespace":"n","type_name":"t","id":"i"}}"#;

    #[test]
    fn parsing_stops_at_a_torn_or_oversized_frame() {
        let mut log = HEADER.to_vec();
        log.extend(frame(REMOVE));
        let good = log.len();
        let (records, end) = parse(Path::new("x"), &log).expect("parses");
        assert_eq!((records.len(), end), (1, good));

        let mut torn = log.clone();
        torn.extend(&frame(REMOVE)[..10]);
        assert_eq!(parse(Path::new("x"), &torn).expect("parses").1, good);

        let mut oversized = log.clone();
        oversized.extend(u32::MAX.to_le_bytes());
        oversized.extend([0; 12]);
        assert_eq!(parse(Path::new("x"), &oversized).expect("parses").1, good);

        let mut zeroed = log.clone();
        zeroed.extend([0; 700]);
        assert_eq!(parse(Path::new("x"), &zeroed).expect("parses").1, good);
    }

    #[test]
    fn a_bad_record_followed_by_a_good_one_is_corruption() {
        let mut log = HEADER.to_vec();
        log.extend(frame(REMOVE));
        let bad = log.len();
        let mut flipped = frame(REMOVE);
        flipped[FRAME + 3] ^= 0x20;
        log.extend(flipped);
        let next = log.len();
        log.extend(frame(REMOVE));
        let err = parse(Path::new("x"), &log)
            .map(|_| ())
            .expect_err("mid-log corruption");
        assert!(
            matches!(err, BackendError::Corrupt { offset, next_valid, .. }
                if offset == bad as u64 && next_valid == next as u64),
            "{err:?}"
        );
    }

    #[test]
    fn a_record_with_a_valid_crc_but_foreign_content_is_an_error() {
        let mut log = HEADER.to_vec();
        log.extend(frame(b"{\"Launch\":1}"));
        let err = parse(Path::new("x"), &log)
            .map(|_| ())
            .expect_err("foreign record");
        assert!(
            matches!(err, BackendError::BadRecord { offset, .. } if offset == HEADER.len() as u64)
        );
    }
}
