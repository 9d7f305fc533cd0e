//! The simulated directory's state: durable and cached content per file, the pending
//! changes with their sequence numbers, and the fault and cut counters.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::{Faults, Mode, Survivors};
use crate::error::MediumError;
use crate::memory::{slice_at, write_into};

/// The granularity at which unflushed writes survive or not.
pub const SECTOR: usize = 512;

/// A change to a file not yet durable.
#[derive(Debug, Clone)]
enum Change {
    /// Sector `index` now holds `bytes` (the whole sector, or the file's tail).
    Sector { index: u64, bytes: Vec<u8> },
    /// The file is cut or extended to this length.
    Len(u64),
}

#[derive(Debug, Clone)]
struct Unit {
    seq: u64,
    change: Change,
    /// Held back from flushes by a swap fault until the next write is issued.
    held: bool,
}

#[derive(Debug, Clone, Default)]
struct Inode {
    durable: Vec<u8>,
    current: Vec<u8>,
    pending: Vec<Unit>,
}

#[derive(Debug, Clone)]
enum DirOp {
    Link { name: String, inode: usize },
    Unlink { name: String },
}

#[derive(Debug, Clone)]
pub(super) struct Disk {
    mode: Mode,
    inodes: Vec<Inode>,
    names: BTreeMap<String, usize>,
    durable_names: BTreeMap<String, usize>,
    dir_ops: Vec<(u64, DirOp)>,
    next_seq: u64,
    ops: u64,
    writes: u64,
    flushes: u64,
    skip_flush: Option<u64>,
    swap_write: Option<u64>,
    cut_at: Option<u64>,
}

fn power_cut() -> MediumError {
    MediumError::Io {
        action: "write",
        path: PathBuf::from("<lossy>"),
        source: std::io::Error::other("power cut (simulated)"),
    }
}

fn not_found(name: &str) -> MediumError {
    MediumError::Io {
        action: "open",
        path: PathBuf::from("<lossy>").join(name),
        source: std::io::Error::from(std::io::ErrorKind::NotFound),
    }
}

impl Disk {
    pub(super) fn new(mode: Mode) -> Self {
        Disk {
            mode,
            inodes: Vec::new(),
            names: BTreeMap::new(),
            durable_names: BTreeMap::new(),
            dir_ops: Vec::new(),
            next_seq: 0,
            ops: 0,
            writes: 0,
            flushes: 0,
            skip_flush: None,
            swap_write: None,
            cut_at: None,
        }
    }

    pub(super) fn mode(&self) -> Mode {
        self.mode
    }

    pub(super) fn put_durable(&mut self, name: &str, bytes: &[u8]) {
        let inode = self.inodes.len();
        self.inodes.push(Inode {
            durable: bytes.to_vec(),
            current: bytes.to_vec(),
            pending: Vec::new(),
        });
        self.names.insert(name.to_owned(), inode);
        self.durable_names.insert(name.to_owned(), inode);
    }

    pub(super) fn set_faults(&mut self, faults: Faults) {
        self.skip_flush = faults.skip_flush.map(|k| self.flushes + k);
        self.swap_write = faults.swap_writes.map(|k| self.writes + k);
    }

    pub(super) fn cut_after(&mut self, ops: u64) {
        self.cut_at = Some(self.ops + ops);
    }

    pub(super) fn ops(&self) -> u64 {
        self.ops
    }

    pub(super) fn counts(&self) -> (u64, u64) {
        (self.writes, self.flushes)
    }

    pub(super) fn pending(&self) -> Vec<u64> {
        let mut seqs: Vec<u64> = self
            .inodes
            .iter()
            .flat_map(|i| i.pending.iter().map(|u| u.seq))
            .chain(self.dir_ops.iter().map(|(s, _)| *s))
            .collect();
        seqs.sort_unstable();
        seqs
    }

    pub(super) fn current(&self, name: &str) -> Option<Vec<u8>> {
        self.names
            .get(name)
            .map(|&i| self.inodes[i].current.clone())
    }

    pub(super) fn names(&self) -> Vec<String> {
        self.names.keys().cloned().collect()
    }

    /// Counts one operation, or fails if the power is already gone.
    fn op(&mut self) -> Result<(), MediumError> {
        if self.cut_at.is_some_and(|c| self.ops >= c) {
            return Err(power_cut());
        }
        self.ops += 1;
        Ok(())
    }

    fn alive(&self) -> Result<(), MediumError> {
        match self.cut_at {
            Some(c) if self.ops >= c => Err(power_cut()),
            _ => Ok(()),
        }
    }

    fn seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }

    fn inode_of(&self, name: &str) -> Result<usize, MediumError> {
        self.names.get(name).copied().ok_or_else(|| not_found(name))
    }

    fn link_new(&mut self, name: &str) -> usize {
        let inode = self.inodes.len();
        self.inodes.push(Inode::default());
        self.names.insert(name.to_owned(), inode);
        let seq = self.seq();
        self.dir_ops.push((
            seq,
            DirOp::Link {
                name: name.to_owned(),
                inode,
            },
        ));
        inode
    }

    pub(super) fn len(&self, name: &str) -> Result<u64, MediumError> {
        self.alive()?;
        Ok(self.inodes[self.inode_of(name)?].current.len() as u64)
    }

    pub(super) fn read_at(
        &self,
        name: &str,
        offset: u64,
        len: usize,
    ) -> Result<Vec<u8>, MediumError> {
        self.alive()?;
        slice_at(&self.inodes[self.inode_of(name)?].current, offset, len)
    }

    /// Starts a data write: counts it, and tells whether the swap fault holds it back.
    fn begin_write(&mut self) -> Result<bool, MediumError> {
        self.op()?;
        let index = self.writes;
        self.writes += 1;
        if self.swap_write.is_some_and(|k| index == k + 1) {
            // Write k+1 is issued: write k may now be flushed like any other.
            for inode in &mut self.inodes {
                for unit in &mut inode.pending {
                    unit.held = false;
                }
            }
        }
        Ok(self.swap_write == Some(index))
    }

    fn record_sectors(&mut self, inode: usize, offset: u64, len: usize, held: bool) {
        if len == 0 {
            return;
        }
        let first = offset / SECTOR as u64;
        let last = (offset + len as u64 - 1) / SECTOR as u64;
        for index in first..=last {
            let seq = self.seq();
            let file = &mut self.inodes[inode];
            let start = (index as usize) * SECTOR;
            let end = (start + SECTOR).min(file.current.len());
            let bytes = file.current[start..end].to_vec();
            file.pending.push(Unit {
                seq,
                change: Change::Sector { index, bytes },
                held,
            });
        }
    }

    fn record_len(&mut self, inode: usize, len: u64, held: bool) {
        let seq = self.seq();
        self.inodes[inode].pending.push(Unit {
            seq,
            change: Change::Len(len),
            held,
        });
    }

    pub(super) fn write_at(
        &mut self,
        name: &str,
        offset: u64,
        data: &[u8],
    ) -> Result<(), MediumError> {
        let held = self.begin_write()?;
        let inode = match self.names.get(name) {
            Some(&i) => i,
            None => self.link_new(name),
        };
        write_into(&mut self.inodes[inode].current, offset, data)?;
        self.record_sectors(inode, offset, data.len(), held);
        Ok(())
    }

    pub(super) fn write_new(&mut self, name: &str, data: &[u8]) -> Result<(), MediumError> {
        let held = self.begin_write()?;
        let inode = match self.names.get(name) {
            Some(&i) => {
                self.inodes[i].current.clear();
                self.record_len(i, 0, held);
                i
            }
            None => self.link_new(name),
        };
        self.inodes[inode].current = data.to_vec();
        self.record_sectors(inode, 0, data.len(), held);
        Ok(())
    }

    pub(super) fn set_len(&mut self, name: &str, len: u64) -> Result<(), MediumError> {
        let held = self.begin_write()?;
        let inode = self.inode_of(name)?;
        let size = usize::try_from(len).map_err(|_| MediumError::Unsupported {
            path: PathBuf::from(name),
            reason: format!("length {len} does not fit in memory"),
        })?;
        self.inodes[inode].current.resize(size, 0);
        self.record_len(inode, len, held);
        Ok(())
    }

    /// Counts a flush; false when the skip fault swallows it.
    fn begin_flush(&mut self) -> Result<bool, MediumError> {
        self.op()?;
        let index = self.flushes;
        self.flushes += 1;
        Ok(self.skip_flush != Some(index))
    }

    pub(super) fn sync_file(&mut self, name: &str) -> Result<(), MediumError> {
        let inode = self.inode_of(name)?;
        if !self.begin_flush()? {
            return Ok(());
        }
        let file = &mut self.inodes[inode];
        let (held, done): (Vec<Unit>, Vec<Unit>) = file.pending.drain(..).partition(|u| u.held);
        for unit in &done {
            apply(&mut file.durable, &unit.change);
        }
        file.pending = held;
        Ok(())
    }

    pub(super) fn rename(&mut self, from: &str, to: &str) -> Result<(), MediumError> {
        let source = self.inode_of(from)?;
        match (self.mode, self.names.get(to).copied()) {
            (Mode::Fat, Some(target)) if target != source => {
                // No atomic rename: the target's sectors are rewritten in place.
                self.op()?;
                let data = self.inodes[source].current.clone();
                let file = &mut self.inodes[target];
                let shrinks = data.len() < file.current.len();
                file.current = data.clone();
                if shrinks {
                    self.record_len(target, data.len() as u64, false);
                }
                self.record_sectors(target, 0, data.len(), false);
                self.unlink(from);
            }
            _ => {
                self.op()?;
                // Replacing `to` is part of the same journal entry as the link.
                self.names.remove(from);
                self.names.insert(to.to_owned(), source);
                let seq = self.seq();
                self.dir_ops.push((
                    seq,
                    DirOp::Link {
                        name: to.to_owned(),
                        inode: source,
                    },
                ));
                let seq = self.seq();
                self.dir_ops.push((
                    seq,
                    DirOp::Unlink {
                        name: from.to_owned(),
                    },
                ));
            }
        }
        Ok(())
    }

    fn unlink(&mut self, name: &str) {
        if self.names.remove(name).is_some() {
            let seq = self.seq();
            self.dir_ops.push((
                seq,
                DirOp::Unlink {
                    name: name.to_owned(),
                },
            ));
        }
    }

    pub(super) fn remove(&mut self, name: &str) -> Result<(), MediumError> {
        self.inode_of(name)?;
        self.op()?;
        self.unlink(name);
        Ok(())
    }

    pub(super) fn sync_dir(&mut self) -> Result<(), MediumError> {
        if !self.begin_flush()? {
            return Ok(());
        }
        self.durable_names = self.names.clone();
        self.dir_ops.clear();
        Ok(())
    }

    /// The disk after a cut that kept `survivors`: a rename in POSIX mode is one
    /// journal entry (link and unlink survive together, as a prefix of the journal).
    pub(super) fn after_cut(&self, survivors: &Survivors) -> Disk {
        let mut names = self.durable_names.clone();
        let mut ops = self.dir_ops.iter().peekable();
        while let Some((seq, op)) = ops.next() {
            if !survivors.contains(seq) {
                break;
            }
            match op {
                DirOp::Link { name, inode } => {
                    names.insert(name.clone(), *inode);
                    // The unlink of a rename's old name is part of the same entry.
                    if let Some((next, DirOp::Unlink { name: old })) = ops.peek() {
                        if *next == seq + 1 && old != name {
                            names.remove(old);
                            ops.next();
                        }
                    }
                }
                DirOp::Unlink { name } => {
                    names.remove(name);
                }
            }
        }
        let inodes = self
            .inodes
            .iter()
            .map(|file| {
                let mut bytes = file.durable.clone();
                for unit in &file.pending {
                    if survivors.contains(&unit.seq) {
                        apply(&mut bytes, &unit.change);
                    }
                }
                Inode {
                    durable: bytes.clone(),
                    current: bytes,
                    pending: Vec::new(),
                }
            })
            .collect();
        Disk {
            mode: self.mode,
            inodes,
            names: names.clone(),
            durable_names: names,
            dir_ops: Vec::new(),
            next_seq: self.next_seq,
            ops: self.ops,
            writes: self.writes,
            flushes: self.flushes,
            skip_flush: None,
            swap_write: None,
            cut_at: None,
        }
    }
}

fn apply(bytes: &mut Vec<u8>, change: &Change) {
    match change {
        Change::Sector { index, bytes: data } => {
            let start = *index as usize * SECTOR;
            if bytes.len() < start + data.len() {
                bytes.resize(start + data.len(), 0);
            }
            bytes[start..start + data.len()].copy_from_slice(data);
        }
        Change::Len(len) => bytes.resize(*len as usize, 0),
    }
}
