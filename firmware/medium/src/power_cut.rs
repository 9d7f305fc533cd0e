//! [`PowerCutMedium`]: memory that loses power after a given number of written bytes.
//!
//! It models a medium whose writes land in order, sector by sector: a cut leaves a
//! prefix of whole 512-byte sectors (a sector is written whole or not at all, as in the
//! lossy model). The lossy page-cache model ([`crate::lossy`]) is the stricter one;
//! this one tries every byte budget cheaply.

use std::path::Path;

use crate::error::MediumError;
use crate::medium::Medium;
use crate::memory::{memory_path, slice_at, write_into};

/// The unit a write lands in.
const SECTOR: u64 = 512;

/// Memory that loses power after `budget` more bytes are written: a write that crosses
/// the budget lands only the whole sectors before it, and a `replace_all` that does not
/// fit lands nothing (the rename never happened).
#[derive(Debug, Clone)]
pub struct PowerCutMedium {
    bytes: Vec<u8>,
    budget: Option<usize>,
    written: usize,
}

impl PowerCutMedium {
    /// Memory holding `bytes`, with power that never fails.
    pub fn new(bytes: Vec<u8>) -> Self {
        PowerCutMedium {
            bytes,
            budget: None,
            written: 0,
        }
    }

    /// Cuts power after `budget` more written bytes.
    pub fn cut_after(&mut self, budget: usize) {
        self.budget = Some(budget);
    }

    /// Bytes written since creation (or since the last [`power_on`](Self::power_on)).
    pub fn written(&self) -> usize {
        self.written
    }

    /// The bytes as they are now.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Restores power, keeping whatever landed.
    pub fn power_on(&mut self) {
        self.budget = None;
        self.written = 0;
    }

    fn allowance(&self, wanted: usize) -> usize {
        match self.budget {
            Some(b) => wanted.min(b.saturating_sub(self.written)),
            None => wanted,
        }
    }

    fn power_lost() -> MediumError {
        MediumError::Io {
            action: "write",
            path: memory_path(),
            source: std::io::Error::other("power cut (simulated)"),
        }
    }
}

impl Medium for PowerCutMedium {
    fn path(&self) -> &Path {
        Path::new("<memory>")
    }

    fn len(&self) -> Result<u64, MediumError> {
        Ok(self.bytes.len() as u64)
    }

    fn read_at(&self, offset: u64, len: usize) -> Result<Vec<u8>, MediumError> {
        slice_at(&self.bytes, offset, len)
    }

    fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<(), MediumError> {
        let n = self.allowance(data.len());
        if n < data.len() {
            // Only the sectors wholly before the cut land.
            let end = (offset + n as u64) / SECTOR * SECTOR;
            let landed = end.saturating_sub(offset) as usize;
            write_into(&mut self.bytes, offset, &data[..landed])?;
            self.written += n;
            return Err(Self::power_lost());
        }
        write_into(&mut self.bytes, offset, data)?;
        self.written += n;
        Ok(())
    }

    fn flush(&mut self) -> Result<(), MediumError> {
        match self.budget {
            Some(b) if self.written >= b => Err(Self::power_lost()),
            _ => Ok(()),
        }
    }

    fn replace_all(&mut self, data: &[u8]) -> Result<(), MediumError> {
        if self.allowance(data.len()) < data.len() {
            self.written = self.budget.unwrap_or(self.written);
            return Err(Self::power_lost());
        }
        self.bytes = data.to_vec();
        self.written += data.len();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn power_cut_lands_whole_sectors() {
        let mut m = PowerCutMedium::new(vec![0; 2048]);
        m.cut_after(1000);
        assert!(m.write_at(100, &[1; 1500]).is_err());
        assert!(m.bytes()[100..1024].iter().all(|&b| b == 1));
        assert!(m.bytes()[1024..].iter().all(|&b| b == 0));
        assert!(m.write_at(0, &[9]).is_err());
        assert_eq!(m.bytes()[0], 0);
    }

    #[test]
    fn replace_all_is_all_or_nothing() {
        let mut m = PowerCutMedium::new(vec![7; 4]);
        m.cut_after(3);
        assert!(m.replace_all(&[1; 6]).is_err());
        assert_eq!(m.bytes(), &[7; 4]);
        m.power_on();
        m.replace_all(&[1; 6]).unwrap();
        assert_eq!(m.bytes(), &[1; 6]);
    }
}
