//! [`GrubEnvStore`]: the boot state in a GRUB environment block file.
//!
//! # Power safety
//! The block lives where GRUB itself rewrites it in place (`save_env`), often on FAT
//! (the EFI system partition), where no rename is atomic. So every write is in place,
//! and torn blocks are told by their generations (see [`envblk`]): head and tail differ.
//! A commit writes the **second copy** (`grubenv.b`, [`SECOND_COPY_SUFFIX`], beside the
//! block) first and flushes, then the block itself and flushes. A cut inside the second
//! copy leaves the block (old state); a cut inside the block leaves it torn, and load,
//! like the generated GRUB fragment, falls back to the complete second copy (new state).
//! The block stays exactly what `grub-editenv`, GRUB's `load_env` and RAUC read; the
//! second copy is only read when the block is torn.
//!
//! Each generation is 0, 1 or 2 and differs from both copies' current ones, so a torn
//! copy can never show the same generation twice. The fragment moves the block's
//! generation on by one whenever it saves (it cannot see the second copy, and need not).
//!
//! A commit while the block is torn (a cut inside the last one) writes the block first,
//! from the whole second copy, and the second copy after: the whole copy is never the
//! one being rewritten.
//!
//! A block written by other tools (no generations) is read as it is and gets them on the
//! first commit; its first rewrite, like `init`, replaces the file whole. Media without
//! a directory (memory) hold no second copy and are replaced whole. The block keeps the
//! standard 1024 bytes of `grub-editenv create`: the generations tell a torn block of
//! two sectors, so other sizes are refused.

use crate::grub::envblk;
use crate::grub::mapping;
use crate::medium::Medium;
use crate::rauc::vars::{MappingError, Vars};
use crate::state::{BootState, SlotName, MAX_TRIES};
use crate::store::{BootStore, StoreError};

const FORMAT: &str = "GRUB environment block";

/// The second copy's name is the block's name with this suffix (`grubenv.b`).
pub const SECOND_COPY_SUFFIX: &str = ".b";

/// The boot state in a GRUB environment block (`grubenv`) on a medium.
#[derive(Debug)]
pub struct GrubEnvStore<M: Medium> {
    medium: M,
    /// The second copy beside the block, when the medium has a directory.
    second: Option<M>,
}

/// What one copy holds.
enum Copy {
    Absent,
    Whole(Vars, usize),
    Torn(Vars),
    Invalid(String),
}

impl<M: Medium> GrubEnvStore<M> {
    /// A store for the environment block in `medium` (and its second copy beside it);
    /// nothing is read yet.
    pub fn new(medium: M) -> Self {
        let second = medium
            .path()
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| medium.sibling(&format!("{n}{SECOND_COPY_SUFFIX}")));
        GrubEnvStore { medium, second }
    }

    /// Gives the medium back.
    pub fn into_medium(self) -> M {
        self.medium
    }

    /// Every variable of the block, or of the second copy when the block is torn.
    pub fn variables(&self) -> Result<Vars, StoreError> {
        match (self.read(&self.medium)?, self.read_second()?) {
            (Copy::Whole(vars, _), _) | (_, Copy::Whole(vars, _)) => Ok(vars),
            (Copy::Torn(_), _) => Err(self.corrupt(format!(
                "it is torn ({} and {} differ) and no whole second copy is beside it",
                envblk::GEN_HEAD,
                envblk::GEN_TAIL
            ))),
            (Copy::Invalid(reason), _) => Err(self.corrupt(reason)),
            (Copy::Absent, _) => Err(StoreError::Io {
                path: self.medium.path().to_owned(),
                source: std::io::Error::from(std::io::ErrorKind::NotFound),
            }),
        }
    }

    fn corrupt(&self, reason: String) -> StoreError {
        StoreError::Corrupt {
            path: self.medium.path().to_owned(),
            format: FORMAT,
            reason,
        }
    }

    fn read(&self, medium: &M) -> Result<Copy, StoreError> {
        let bytes = match medium.read_all() {
            Err(e) if e.is_not_found() => return Ok(Copy::Absent),
            other => other?,
        };
        if bytes.is_empty() {
            return Ok(Copy::Absent);
        }
        Ok(match envblk::decode(&bytes) {
            Ok(vars) if envblk::is_whole(&vars) => Copy::Whole(vars, bytes.len()),
            Ok(vars) => Copy::Torn(vars),
            Err(e) => Copy::Invalid(e.to_string()),
        })
    }

    fn read_second(&self) -> Result<Copy, StoreError> {
        match &self.second {
            Some(second) => self.read(second),
            None => Ok(Copy::Absent),
        }
    }

    /// The current variables and block size, or a fresh block when neither copy exists.
    /// Anything else that is not a block is refused, not overwritten.
    fn existing(&self) -> Result<(Vars, usize), StoreError> {
        let first = self.read(&self.medium)?;
        let second = self.read_second()?;
        match (first, second) {
            (Copy::Whole(vars, size), _) | (_, Copy::Whole(vars, size)) => Ok((vars, size)),
            (Copy::Absent, _) => Ok((Vars::default(), envblk::DEFAULT_SIZE)),
            (Copy::Torn(_), _) => Err(self.corrupt(
                "it is torn and no whole second copy is beside it; refusing to overwrite it \
                 (remove the file or run `grub-editenv FILE create` to start afresh)"
                    .into(),
            )),
            (Copy::Invalid(reason), _) => Err(self.corrupt(format!(
                "{reason}; refusing to overwrite it (remove the file or run \
                 `grub-editenv FILE create` to start afresh)"
            ))),
        }
    }

    /// A generation differing from both copies' current ones.
    fn next_generation(&self) -> Result<u8, StoreError> {
        let mut seen = Vec::new();
        for copy in [self.read(&self.medium)?, self.read_second()?] {
            if let Copy::Whole(vars, _) | Copy::Torn(vars) = copy {
                let (head, tail) = envblk::generations(&vars);
                seen.extend(head.into_iter().chain(tail).map(<[u8]>::to_vec));
            }
        }
        Ok((0..=2u8)
            .find(|g| !seen.contains(&g.to_string().into_bytes()))
            .unwrap_or(0))
    }

    fn write(&mut self, vars: &Vars, size: usize) -> Result<(), StoreError> {
        if self.second.is_some() && size != envblk::DEFAULT_SIZE {
            return Err(StoreError::Unsupported {
                path: self.medium.path().to_owned(),
                reason: format!(
                    "the block is {size} bytes; Skerry keeps the standard {} bytes \
                     (`grub-editenv FILE create`), whose torn rewrites it can tell",
                    envblk::DEFAULT_SIZE
                ),
            });
        }
        let generation = self.next_generation()?;
        let bytes = envblk::encode_with_generation(vars, size, generation)
            .map_err(|e| self.corrupt(e.to_string()))?;
        // The whole copy is written last: the block is, unless it is torn (or missing),
        // when the second copy is the only whole one and the block is rewritten first.
        let block_whole = matches!(self.read(&self.medium)?, Copy::Whole(..));
        match &mut self.second {
            Some(second) if block_whole => {
                write_in_place(second, &bytes)?;
                write_in_place(&mut self.medium, &bytes)
            }
            Some(second) => {
                write_in_place(&mut self.medium, &bytes)?;
                write_in_place(second, &bytes)
            }
            None => Ok(self.medium.replace_all(&bytes)?),
        }
    }
}

/// Rewrites a copy of the same length in place and flushes; a copy of another length
/// (absent, or written by other tools) is replaced whole.
fn write_in_place<M: Medium>(medium: &mut M, bytes: &[u8]) -> Result<(), StoreError> {
    let len = match medium.len() {
        Err(e) if e.is_not_found() => 0,
        other => other?,
    };
    if len != bytes.len() as u64 {
        return Ok(medium.replace_all(bytes)?);
    }
    medium.write_at(0, bytes)?;
    Ok(medium.flush()?)
}

impl<M: Medium> GrubEnvStore<M> {
    /// Sets (`Some`) or removes (`None`) variables beside the boot state in one commit,
    /// as power-safe as a state commit (second copy first, then the block). The block
    /// must exist already: variables alone are no boot state to start a block with.
    /// The generations are the store's own and cannot be set.
    pub fn commit_variables(&mut self, changes: &[(&str, Option<&str>)]) -> Result<(), StoreError> {
        if let Some((name, _)) = changes
            .iter()
            .find(|(n, _)| *n == envblk::GEN_HEAD || *n == envblk::GEN_TAIL)
        {
            return Err(self.corrupt(format!("{name} is the store's own and cannot be set")));
        }
        self.variables()?;
        let (mut vars, size) = self.existing()?;
        for (name, value) in changes {
            match value {
                Some(value) => vars.set(name, value),
                None => vars.remove(name),
            }
        }
        self.write(&vars, size)
    }
}

impl<M: Medium> BootStore for GrubEnvStore<M> {
    fn load(&self) -> Result<BootState, StoreError> {
        mapping::read_state(&self.variables()?).map_err(|e| match e {
            MappingError::State(e) => StoreError::State(e),
            other => self.corrupt(other.to_string()),
        })
    }

    fn commit(&mut self, state: &BootState) -> Result<(), StoreError> {
        state.check()?;
        let (mut vars, size) = self.existing()?;
        mapping::write_state(&mut vars, state);
        self.write(&vars, size)
    }

    fn max_tries(&self) -> u8 {
        MAX_TRIES
    }
}

impl<M: Medium> GrubEnvStore<M> {
    /// Runs the generated fragment's rules on the stored variables (not the model's), so
    /// the conformance suite checks the fragment against the model. The simulation's
    /// side ([`crate::sim::GrubFragment`]); no production path calls it.
    pub(crate) fn run_grub_fragment(&mut self) -> Result<SlotName, StoreError> {
        let (mut vars, size) = self.existing()?;
        let decision = mapping::power_on(&mut vars);
        let slot = decision.slot.ok_or_else(|| {
            self.corrupt(
                "no bootable slot in ORDER; the fragment would start its fallback slot".into(),
            )
        })?;
        if decision.save {
            self.write(&vars, size)?;
        }
        Ok(slot)
    }
}
