//! The lossy page-cache model: a directory of named files that, at a power cut, keeps
//! only what was made durable plus any subset of what was not.
//!
//! What it models (POSIX, on a journaling filesystem such as ext4; FAT where noted):
//! - **Writes** land in a page cache. Until the file is synced, each written 512-byte
//!   sector (and each length change) may or may not survive a cut, independently of the
//!   others, so unflushed writes can be lost, torn at sector granularity, or land in any
//!   order. A single sector is written whole or not at all.
//! - **Names** (creating a file, a rename, a removal) survive only once the directory
//!   is synced; before that a cut keeps a prefix of them, in order (the journal).
//! - **FAT** has no atomic rename: renaming over an existing file rewrites that file in
//!   place, sector by sector, as unflushed writes.
//!
//! Faults for the meta-tests: the medium can be told to skip the k-th flush (it
//! returns success and makes nothing durable), or to swap writes k and k+1 (write k is
//! held back from every flush until write k+1 has been issued, as a disk that
//! reorders them across the barrier would).
//!
//! A test forks the filesystem before an action, cuts power after each number of
//! operations ([`LossyFs::cut_after`]), and looks at every allowed outcome
//! ([`LossyFs::survivor_choices`], [`LossyFs::power_loss`]); [`every_power_loss`] does
//! exactly that.
//!
//! # Layout
//! - [`disk`]: the state and its rules.
//! - this module: the shared handle, [`Directory`] for it, and the drivers.

mod disk;
mod drive;

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use crate::dir::Directory;
use crate::error::MediumError;

use disk::Disk;
pub use disk::SECTOR;
pub use drive::{every_power_loss, CutPoint};

/// Whether renames are atomic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A POSIX filesystem: an atomic rename, durable once the directory is synced.
    Posix,
    /// FAT (an EFI system partition, the Raspberry Pi boot partition): a rename over an
    /// existing file rewrites it in place.
    Fat,
}

/// Faults to inject, counted from when they are set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Faults {
    /// The k-th flush (file or directory sync, from 0) does nothing but succeed.
    pub skip_flush: Option<u64>,
    /// Writes k and k+1 (from 0) are swapped: k is not made durable by any flush before
    /// k+1 is issued.
    pub swap_writes: Option<u64>,
}

/// Which unflushed changes survive a cut: their sequence numbers.
pub type Survivors = BTreeSet<u64>;

/// A handle on a simulated directory; clones share it, [`fork`](Self::fork) copies it.
#[derive(Debug, Clone)]
pub struct LossyFs {
    disk: Rc<RefCell<Disk>>,
    root: PathBuf,
}

impl LossyFs {
    /// An empty directory.
    pub fn new(mode: Mode) -> Self {
        LossyFs {
            disk: Rc::new(RefCell::new(Disk::new(mode))),
            root: PathBuf::from("<lossy>"),
        }
    }

    /// Adds a durable file (to set up a test).
    pub fn with_file(self, name: &str, bytes: &[u8]) -> Self {
        self.disk.borrow_mut().put_durable(name, bytes);
        self
    }

    /// An independent copy, with the same pending changes, counters and faults.
    pub fn fork(&self) -> LossyFs {
        LossyFs {
            disk: Rc::new(RefCell::new(self.disk.borrow().clone())),
            root: self.root.clone(),
        }
    }

    /// The filesystem's mode.
    pub fn mode(&self) -> Mode {
        self.disk.borrow().mode()
    }

    /// Injects `faults`, counted from now.
    pub fn set_faults(&self, faults: Faults) {
        self.disk.borrow_mut().set_faults(faults);
    }

    /// Cuts power after `ops` more operations (writes, syncs, renames, removals): every
    /// later operation fails and changes nothing.
    pub fn cut_after(&self, ops: u64) {
        self.disk.borrow_mut().cut_after(ops);
    }

    /// Operations done so far.
    pub fn ops(&self) -> u64 {
        self.disk.borrow().ops()
    }

    /// Writes and flushes done so far.
    pub fn counts(&self) -> (u64, u64) {
        self.disk.borrow().counts()
    }

    /// The sequence numbers of every change not yet durable.
    pub fn pending(&self) -> Vec<u64> {
        self.disk.borrow().pending()
    }

    /// The directory after a power cut that kept exactly `survivors` of the pending
    /// changes: everything durable, nothing pending, power on, no faults.
    pub fn power_loss(&self, survivors: &Survivors) -> LossyFs {
        LossyFs {
            disk: Rc::new(RefCell::new(self.disk.borrow().after_cut(survivors))),
            root: self.root.clone(),
        }
    }

    /// The outcomes to check after a cut: every subset of the pending changes when there
    /// are at most `limit` of them, else a deterministic sample of `limit` subsets that
    /// always holds none, all, each one alone, all but each one, and every prefix and
    /// suffix in write order.
    pub fn survivor_choices(&self, limit: usize) -> Vec<Survivors> {
        drive::choices(&self.pending(), limit)
    }

    /// The current content of `name` (what a reader sees before any cut).
    pub fn read(&self, name: &str) -> Option<Vec<u8>> {
        self.disk.borrow().current(name)
    }

    /// The names in the directory now.
    pub fn names(&self) -> Vec<String> {
        self.disk.borrow().names()
    }
}

fn name_str(name: &OsStr) -> Result<&str, MediumError> {
    name.to_str().ok_or_else(|| MediumError::Unsupported {
        path: PathBuf::from(name),
        reason: "the lossy model only holds UTF-8 names".into(),
    })
}

impl Directory for LossyFs {
    fn path(&self) -> &Path {
        &self.root
    }

    fn len(&self, name: &OsStr) -> Result<u64, MediumError> {
        self.disk.borrow().len(name_str(name)?)
    }

    fn read_at(&self, name: &OsStr, offset: u64, len: usize) -> Result<Vec<u8>, MediumError> {
        self.disk.borrow().read_at(name_str(name)?, offset, len)
    }

    fn write_at(&mut self, name: &OsStr, offset: u64, data: &[u8]) -> Result<(), MediumError> {
        self.disk
            .borrow_mut()
            .write_at(name_str(name)?, offset, data)
    }

    fn write_new(&mut self, name: &OsStr, _like: &OsStr, data: &[u8]) -> Result<(), MediumError> {
        self.disk.borrow_mut().write_new(name_str(name)?, data)
    }

    fn set_len(&mut self, name: &OsStr, len: u64) -> Result<(), MediumError> {
        self.disk.borrow_mut().set_len(name_str(name)?, len)
    }

    fn sync_file(&mut self, name: &OsStr) -> Result<(), MediumError> {
        self.disk.borrow_mut().sync_file(name_str(name)?)
    }

    fn rename(&mut self, from: &OsStr, to: &OsStr) -> Result<(), MediumError> {
        self.disk
            .borrow_mut()
            .rename(name_str(from)?, name_str(to)?)
    }

    fn remove(&mut self, name: &OsStr) -> Result<(), MediumError> {
        self.disk.borrow_mut().remove(name_str(name)?)
    }

    fn sync_dir(&mut self) -> Result<(), MediumError> {
        self.disk.borrow_mut().sync_dir()
    }
}

#[cfg(test)]
mod tests;
