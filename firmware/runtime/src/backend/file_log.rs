//! [`FileLog`]: an append-only log of resource changes in one file.
//!
//! Format of `state.log`: the header `SKERRYLOG1\n`, then records, each
//! `[payload length: u32 LE][CRC-32 of payload: u32 LE][payload: JSON]`, where the
//! payload is `{"Put": PersistedResource}` or `{"Remove": ResourceKey}`.
//!
//! Crash safety: a write cut short leaves a torn last record, which fails its length
//! or CRC check; opening stops at the first such record and truncates the file there,
//! so the state is exactly the prefix of completed writes. Compaction writes the live
//! records to `state.log.tmp`, fsyncs it, renames it over `state.log` and fsyncs the
//! directory; a crash before the rename leaves the old log (the temp file is deleted at
//! the next open), a crash after it leaves the new one.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Backend, PersistedResource};
use crate::error::BackendError;
use crate::resource::ResourceKey;

const HEADER: &[u8] = b"SKERRYLOG1\n";
const FRAME: usize = 8;
/// Larger lengths can only come from a torn or corrupt length field.
const MAX_RECORD: usize = 64 << 20;
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
pub struct FileLog {
    dir: PathBuf,
    path: PathBuf,
    file: File,
    len: u64,
    /// Encoded `Put` payload of every live resource: what compaction writes.
    live: BTreeMap<ResourceKey, Vec<u8>>,
    live_bytes: u64,
    durability: Durability,
    compact_above: u64,
    recovery: Recovery,
    loaded: Option<Vec<PersistedResource>>,
    /// Set when a failed append could not be cut off again; further writes would land
    /// behind garbage, so they are refused.
    poisoned: bool,
}

impl FileLog {
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
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| BackendError::Io { path, source }
        };
        fs::create_dir_all(dir).map_err(io(dir))?;
        let path = dir.join(LOG_NAME);
        let tmp = dir.join(TMP_NAME);
        let mut recovery = Recovery::default();
        if tmp.exists() {
            fs::remove_file(&tmp).map_err(io(&tmp))?;
            recovery.discarded_compaction = true;
        }
        if !path.exists() {
            write_atomically(dir, &path, HEADER)?;
        }
        let mut bytes = Vec::new();
        File::open(&path)
            .and_then(|mut f| f.read_to_end(&mut bytes))
            .map_err(io(&path))?;
        if !bytes.starts_with(HEADER) {
            return Err(BackendError::BadHeader { path });
        }
        let (records, good_len) = parse(&path, &bytes)?;
        recovery.records = records.len() as u64;
        let file = OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(io(&path))?;
        if good_len < bytes.len() {
            recovery.truncated_bytes = (bytes.len() - good_len) as u64;
            file.set_len(good_len as u64)
                .and_then(|()| file.sync_all())
                .map_err(io(&path))?;
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
            dir: dir.to_path_buf(),
            path,
            file,
            len: good_len as u64,
            live,
            live_bytes,
            durability,
            compact_above,
            recovery,
            loaded: Some(loaded),
            poisoned: false,
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

    fn io_err(&self, source: io::Error) -> BackendError {
        BackendError::Io {
            path: self.path.clone(),
            source,
        }
    }

    fn append(&mut self, payload: &[u8]) -> Result<(), BackendError> {
        if self.poisoned {
            return Err(self.io_err(io::Error::other(
                "an earlier append failed and could not be undone; reopen the log",
            )));
        }
        let mut frame = Vec::with_capacity(FRAME + payload.len());
        frame.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        frame.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
        frame.extend_from_slice(payload);
        let written = self
            .file
            .write_all(&frame)
            .and_then(|()| match self.durability {
                Durability::Fsync => self.file.sync_data(),
                Durability::ProcessCrash => Ok(()),
            });
        if let Err(source) = written {
            // Cut off whatever part of the record made it, so later appends are not
            // hidden behind a torn record.
            if self.file.set_len(self.len).is_err() {
                self.poisoned = true;
            }
            return Err(self.io_err(source));
        }
        self.len += frame.len() as u64;
        Ok(())
    }

    fn maybe_compact(&mut self) -> Result<(), BackendError> {
        if self.len <= self.compact_above || self.len <= 2 * (self.live_bytes + HEADER.len() as u64)
        {
            return Ok(());
        }
        let mut bytes = Vec::with_capacity(self.live_bytes as usize + HEADER.len());
        bytes.extend_from_slice(HEADER);
        for payload in self.live.values() {
            bytes.extend_from_slice(&(payload.len() as u32).to_le_bytes());
            bytes.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
            bytes.extend_from_slice(payload);
        }
        write_atomically(&self.dir, &self.path, &bytes)?;
        self.file = OpenOptions::new()
            .append(true)
            .open(&self.path)
            .map_err(|source| self.io_err(source))?;
        self.len = bytes.len() as u64;
        Ok(())
    }
}

impl Backend for FileLog {
    fn load(&mut self) -> Result<Vec<PersistedResource>, BackendError> {
        Ok(self.loaded.take().unwrap_or_default())
    }

    fn put(&mut self, record: &PersistedResource) -> Result<(), BackendError> {
        let key = record.metadata.key();
        let payload = serde_json::to_vec(&Record::Put(record.clone())).map_err(|source| {
            BackendError::Encode {
                key: key.clone(),
                source,
            }
        })?;
        self.append(&payload)?;
        self.live_bytes += (payload.len() + FRAME) as u64;
        if let Some(old) = self.live.insert(key, payload) {
            self.live_bytes -= (old.len() + FRAME) as u64;
        }
        self.maybe_compact()
    }

    fn remove(&mut self, key: &ResourceKey) -> Result<(), BackendError> {
        let payload = serde_json::to_vec(&Record::Remove(key.clone())).map_err(|source| {
            BackendError::Encode {
                key: key.clone(),
                source,
            }
        })?;
        self.append(&payload)?;
        if let Some(old) = self.live.remove(key) {
            self.live_bytes -= (old.len() + FRAME) as u64;
        }
        self.maybe_compact()
    }
}

/// Splits the log into records; returns them with their payloads and the length of
/// the valid prefix. A record whose frame is torn ends the log; a record whose CRC
/// holds but whose JSON does not decode is corruption we did not write, so it fails.
fn parse(path: &Path, bytes: &[u8]) -> Result<(Vec<Framed>, usize), BackendError> {
    let mut records = Vec::new();
    let mut offset = HEADER.len();
    while let Some(frame) = bytes.get(offset..offset + FRAME) {
        let len = u32::from_le_bytes([frame[0], frame[1], frame[2], frame[3]]) as usize;
        let crc = u32::from_le_bytes([frame[4], frame[5], frame[6], frame[7]]);
        if len > MAX_RECORD {
            break;
        }
        let Some(payload) = bytes.get(offset + FRAME..offset + FRAME + len) else {
            break;
        };
        if crc32fast::hash(payload) != crc {
            break;
        }
        let record = serde_json::from_slice::<Record>(payload).map_err(|source| {
            BackendError::BadRecord {
                path: path.to_path_buf(),
                offset: offset as u64,
                source,
            }
        })?;
        records.push((payload.to_vec(), record));
        offset += FRAME + len;
    }
    Ok((records, offset))
}

/// Writes `bytes` to `path` through a temp file, fsync and rename, then fsyncs `dir`.
fn write_atomically(dir: &Path, path: &Path, bytes: &[u8]) -> Result<(), BackendError> {
    // The helper's temp file is `state.log.tmp` (TMP_NAME), which `open` cleans up.
    let name = path.file_name().unwrap_or_default();
    skerry_medium::replace_file(&mut skerry_medium::HostDir::new(dir), name, bytes).map_err(|e| {
        BackendError::Io {
            path: e.path().to_owned(),
            source: e.into_io(),
        }
    })
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
