//! [`UbootEnvStore`]: the boot state in a U-Boot environment on a [`Medium`].
//!
//! How a commit stays atomic across power loss:
//! - **redundant**: the copy that is not the newest is rewritten with the next flag and
//!   flushed; until its last byte lands its CRC fails, so U-Boot, `fw_printenv` and
//!   [`load`](BootStore::load) keep reading the other copy.
//! - **single, in a regular file**: the whole file is replaced (temp file, fsync,
//!   rename), so the old or the new file is there, never a mix. A file up to
//!   [`SINGLE_REWRITE_LIMIT`] may hold other bytes around the environment (a flash image);
//!   they are kept.
//! - **single, on a block device**: only an in-place write is possible, and a power cut
//!   in it leaves neither environment. We refuse to commit and ask for a redundant
//!   environment; loading works.
//!
//! Other variables in the environment (`bootcmd`, `bootargs`, ...) are kept as they are.
//!
//! Writes go straight to the medium. That suits files, eMMC/SD partitions and
//! `/dev/mtdblockN`; raw NOR/NAND through `/dev/mtdN` needs an erase before each write,
//! which [`Medium`] does not do, so point the store at the block device instead.
//!
//! Redundant copies use the incremental flag (the newest copy has the other's flag plus
//! one), which U-Boot's common loader (MMC, NAND, SPI flash, UBI) and libubootenv read.
//! U-Boot's parallel NOR driver (`env/flash.c`) only knows the active/obsolete pair
//! (1/0) and is not supported with a redundant environment.
//!
//! A commit never overwrites bytes that are neither a valid copy nor erased (all 0x00 or
//! 0xFF, or beyond the end of a file): a wrong offset or device is refused, not clobbered.

use crate::medium::{Medium, MediumError};
use crate::state::{BootState, SlotName};
use crate::store::{BootStore, StoreError};
use crate::uboot::env::{self, EnvCopy, EnvFormatError};
use crate::uboot::mapping;
use crate::uboot::vars::MappingError;
use crate::uboot::vars::Vars;

const FORMAT: &str = "U-Boot environment";

/// A single environment inside a larger regular file is rewritten by replacing the
/// whole file; above this size we refuse rather than read it all into memory.
pub const SINGLE_REWRITE_LIMIT: u64 = 256 << 20;

/// The largest environment copy we accept (U-Boot's are a few KiB to 256 KiB).
const MAX_ENV_SIZE: usize = 16 << 20;

/// Where the environment lives on the medium, as in `fw_env.config`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UbootLayout {
    /// Byte offset of the first copy.
    pub offset: u64,
    /// Size of one copy in bytes (`CONFIG_ENV_SIZE`).
    pub size: usize,
    /// Two copies with a flag byte; the second starts at `offset + size`.
    pub redundant: bool,
}

impl Default for UbootLayout {
    fn default() -> Self {
        UbootLayout {
            offset: 0,
            size: 0x4000,
            redundant: false,
        }
    }
}

/// One copy's region as read from the medium.
#[derive(Debug)]
enum Region {
    Valid(EnvCopy),
    /// Not (fully) on the medium, or never written: free to initialise.
    Blank,
    Invalid(EnvFormatError),
}

/// The boot state in a U-Boot environment (single or redundant) on a medium.
#[derive(Debug)]
pub struct UbootEnvStore<M: Medium> {
    medium: M,
    layout: UbootLayout,
}

impl<M: Medium> UbootEnvStore<M> {
    /// A store for the environment at `layout` on `medium`; nothing is read yet.
    pub fn new(medium: M, layout: UbootLayout) -> Self {
        UbootEnvStore { medium, layout }
    }

    /// Gives the medium back.
    pub fn into_medium(self) -> M {
        self.medium
    }

    /// The layout this store reads and writes.
    pub fn layout(&self) -> UbootLayout {
        self.layout
    }

    /// Every variable of the newest valid copy (for `skerryctl boot show` and tests).
    pub fn variables(&self) -> Result<Vars, StoreError> {
        let regions = self.read_regions()?;
        let (_, copy) = newest(&regions).ok_or_else(|| self.no_valid_copy(&regions))?;
        Ok(copy.vars.clone())
    }

    fn corrupt(&self, reason: String) -> StoreError {
        StoreError::Corrupt {
            path: self.medium.path().to_owned(),
            format: FORMAT,
            reason,
        }
    }

    fn mapping_error(&self, e: MappingError) -> StoreError {
        match e {
            MappingError::State(e) => StoreError::State(e),
            other => self.corrupt(other.to_string()),
        }
    }

    fn copy_offsets(&self) -> Result<Vec<u64>, StoreError> {
        let min = env::header_len(self.layout.redundant) + 2;
        if self.layout.size < min || self.layout.size > MAX_ENV_SIZE {
            return Err(StoreError::Unsupported {
                path: self.medium.path().to_owned(),
                reason: format!(
                    "environment size {:#x} is outside {min:#x}..={MAX_ENV_SIZE:#x}",
                    self.layout.size
                ),
            });
        }
        let size = self.layout.size as u64;
        let copies = if self.layout.redundant { 2 } else { 1 };
        (0..copies)
            .map(|i| {
                self.layout
                    .offset
                    .checked_add(i * size)
                    .filter(|o| o.checked_add(size).is_some())
                    .ok_or_else(|| StoreError::Unsupported {
                        path: self.medium.path().to_owned(),
                        reason: format!("offset {:#x} is too large", self.layout.offset),
                    })
            })
            .collect()
    }

    fn medium_len(&self) -> Result<u64, StoreError> {
        match self.medium.len() {
            Err(e) if e.is_not_found() => Ok(0),
            other => Ok(other?),
        }
    }

    fn read_regions(&self) -> Result<Vec<Region>, StoreError> {
        let len = self.medium_len()?;
        let size = self.layout.size;
        self.copy_offsets()?
            .into_iter()
            .map(|offset| {
                let present = len.saturating_sub(offset).min(size as u64) as usize;
                let bytes = if present == 0 {
                    Vec::new()
                } else {
                    self.medium.read_at(offset, present)?
                };
                Ok(if present == size && !env::is_erased(&bytes) {
                    match env::decode(&bytes, self.layout.redundant) {
                        Ok(copy) => Region::Valid(copy),
                        Err(e) => Region::Invalid(e),
                    }
                } else if env::is_erased(&bytes) {
                    Region::Blank
                } else {
                    Region::Invalid(EnvFormatError::TooSmall {
                        size: present,
                        min: size,
                    })
                })
            })
            .collect()
    }

    fn no_valid_copy(&self, regions: &[Region]) -> StoreError {
        let reasons: Vec<String> = regions
            .iter()
            .enumerate()
            .filter_map(|(i, r)| match r {
                Region::Invalid(e) => Some(format!("copy {}: {e}", i + 1)),
                Region::Blank => Some(format!("copy {}: empty", i + 1)),
                Region::Valid(_) => None,
            })
            .collect();
        self.corrupt(format!("no valid copy ({})", reasons.join("; ")))
    }

    /// Writes `vars` as the new newest copy.
    fn write_vars(&mut self, regions: &[Region], vars: &Vars) -> Result<(), StoreError> {
        let offsets = self.copy_offsets()?;
        let current = newest(regions);
        if current.is_none() && !regions.iter().any(|r| matches!(r, Region::Blank)) {
            return Err(self.corrupt(format!(
                "{}; refusing to overwrite bytes that are neither an environment nor erased \
                 (check the offset and size; to start afresh, erase the region with zeros)",
                self.no_valid_copy(regions)
            )));
        }
        if self.layout.redundant {
            let (target, flag) = match current {
                Some((i, copy)) => (1 - i, copy.flag.unwrap_or(0).wrapping_add(1)),
                None => (blank_target(regions), 1),
            };
            let block = env::encode(vars, self.layout.size, Some(flag))
                .map_err(|e| self.corrupt(e.to_string()))?;
            self.extend_to(offsets[1] + self.layout.size as u64)?;
            self.medium.write_at(offsets[target], &block)?;
            Ok(self.medium.flush()?)
        } else {
            let block = env::encode(vars, self.layout.size, None)
                .map_err(|e| self.corrupt(e.to_string()))?;
            self.replace_region(offsets[0], &block)
        }
    }

    /// Makes sure a fresh redundant environment has room for both copies, so the tools
    /// that read both find them; the added bytes are zeros (an erased, invalid copy).
    fn extend_to(&mut self, end: u64) -> Result<(), StoreError> {
        let len = self.medium_len()?;
        if len < end {
            let missing =
                usize::try_from(end - len).map_err(|_| self.corrupt("too large".into()))?;
            // No flush of its own: the copy written next is flushed with it, and until
            // then the other copy (or no state, on `init`) is what loads.
            self.medium.write_at(len, &vec![0; missing])?;
        }
        Ok(())
    }

    fn replace_region(&mut self, offset: u64, block: &[u8]) -> Result<(), StoreError> {
        let len = self.medium_len()?;
        let end = offset + block.len() as u64;
        if offset == 0 && (len == 0 || len == block.len() as u64) {
            return self.replace_all(block.to_vec());
        }
        if len > SINGLE_REWRITE_LIMIT {
            return Err(self.single_in_place());
        }
        let mut all = if len == 0 {
            Vec::new()
        } else {
            self.medium.read_all()?
        };
        let end = usize::try_from(end).map_err(|_| self.single_in_place())?;
        if all.len() < end {
            all.resize(end, 0);
        }
        all[end - block.len()..end].copy_from_slice(block);
        self.replace_all(all)
    }

    fn replace_all(&mut self, bytes: Vec<u8>) -> Result<(), StoreError> {
        match self.medium.replace_all(&bytes) {
            Err(MediumError::Unsupported { .. }) => Err(self.single_in_place()),
            other => Ok(other?),
        }
    }

    fn single_in_place(&self) -> StoreError {
        StoreError::Unsupported {
            path: self.medium.path().to_owned(),
            reason: "a single (non-redundant) U-Boot environment here can only be rewritten \
                     in place, and a power cut during that write would leave no valid \
                     environment; configure a redundant environment (two copies, \
                     CONFIG_SYS_REDUNDAND_ENVIRONMENT) or keep the environment in its own file"
                .into(),
        }
    }
}

fn newest(regions: &[Region]) -> Option<(usize, &EnvCopy)> {
    let valid: Vec<(usize, &EnvCopy)> = regions
        .iter()
        .enumerate()
        .filter_map(|(i, r)| match r {
            Region::Valid(c) => Some((i, c)),
            _ => None,
        })
        .collect();
    match valid.as_slice() {
        [] => None,
        [one] => Some(*one),
        [a, b, ..] => {
            let pick = env::newer_copy(a.1.flag.unwrap_or(0), b.1.flag.unwrap_or(0));
            Some(valid[pick])
        }
    }
}

fn blank_target(regions: &[Region]) -> usize {
    regions
        .iter()
        .position(|r| matches!(r, Region::Blank))
        .unwrap_or(0)
}

impl<M: Medium> BootStore for UbootEnvStore<M> {
    fn load(&self) -> Result<BootState, StoreError> {
        let vars = self.variables()?;
        mapping::read_state(&vars).map_err(|e| self.mapping_error(e))
    }

    fn commit(&mut self, state: &BootState) -> Result<(), StoreError> {
        state.check()?;
        let regions = self.read_regions()?;
        let mut vars = newest(&regions)
            .map(|(_, c)| c.vars.clone())
            .unwrap_or_default();
        mapping::write_state(&mut vars, state);
        self.write_vars(&regions, &vars)
    }

    fn max_tries(&self) -> u8 {
        crate::state::MAX_TRIES
    }
}

impl<M: Medium> UbootEnvStore<M> {
    /// Runs the generated boot script's rules on the stored variables (not the model's),
    /// so the conformance suite checks that script against the model. The simulation's
    /// side ([`crate::sim::UbootScript`]); no production path calls it.
    pub(crate) fn run_boot_script(&mut self) -> Result<SlotName, StoreError> {
        let regions = self.read_regions()?;
        let mut vars = newest(&regions)
            .map(|(_, c)| c.vars.clone())
            .ok_or_else(|| self.no_valid_copy(&regions))?;
        let decision = mapping::power_on(&mut vars);
        let slot = decision.slot.ok_or_else(|| {
            self.corrupt(
                "no bootable slot in BOOT_ORDER; the boot script would start its fallback slot"
                    .into(),
            )
        })?;
        if decision.save {
            self.write_vars(&regions, &vars)?;
        }
        Ok(slot)
    }
}
