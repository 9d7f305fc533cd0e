//! [`TrybootStore`]: the boot state in `autoboot.txt` on the Raspberry Pi boot partition.

use std::path::Path;

use crate::medium::{FileMedium, Medium};
use crate::state::{BootState, SlotName, SlotState, SlotStatus};
use crate::store::{BootStore, StoreError};

use super::autoboot::{Autoboot, BootChoice, ParseError};
use super::record;

/// The file the firmware reads, in the first FAT partition.
pub const AUTOBOOT_FILE: &str = "autoboot.txt";
/// The file is always exactly this long: one sector, rewritten in place. FAT has no
/// atomic rename, but a single sector is written whole or not at all, and a file whose
/// length does not change needs no directory-entry update. Only the first rewrite of a
/// file of another length goes through the atomic replace (not atomic on FAT).
pub const FILE_LEN: usize = 512;

/// A trial gets exactly one boot: the one right after `reboot "0 tryboot"`.
pub const TRYBOOT_TRIES: u8 = 1;

/// `autoboot.txt`, with slots configured as `(slot, partition number)`.
#[derive(Debug)]
pub struct TrybootStore<M: Medium> {
    autoboot: M,
    slots: Vec<(SlotName, u32)>,
}

impl TrybootStore<FileMedium> {
    /// The store for `DIR/autoboot.txt` (DIR is the mounted boot partition, or a plain
    /// directory offline). The file need not exist yet; the directory must.
    pub fn open_dir(dir: &Path, slots: Vec<(SlotName, u32)>) -> Result<Self, StoreError> {
        let meta = std::fs::metadata(dir).map_err(|source| StoreError::Io {
            path: dir.to_owned(),
            source,
        })?;
        if !meta.is_dir() {
            return Err(StoreError::Unsupported {
                path: dir.to_owned(),
                reason: "the tryboot store needs the boot partition's directory".into(),
            });
        }
        Ok(TrybootStore::new(
            FileMedium::create(dir.join(AUTOBOOT_FILE)),
            slots,
        ))
    }
}

impl<M: Medium> TrybootStore<M> {
    /// A store on `autoboot` (the file's medium).
    pub fn new(autoboot: M, slots: Vec<(SlotName, u32)>) -> Self {
        TrybootStore { autoboot, slots }
    }

    /// Gives the medium back.
    pub fn into_medium(self) -> M {
        self.autoboot
    }

    /// The medium.
    pub fn medium(&self) -> &M {
        &self.autoboot
    }

    pub(crate) fn corrupt(&self, reason: String) -> StoreError {
        StoreError::Corrupt {
            path: self.autoboot.path().to_owned(),
            format: "autoboot.txt",
            reason,
        }
    }

    fn parse_error(&self, e: ParseError) -> StoreError {
        self.corrupt(e.to_string())
    }

    fn partition(&self, slot: &SlotName) -> Result<u32, StoreError> {
        self.slots
            .iter()
            .find(|(n, _)| n == slot)
            .map(|(_, p)| *p)
            .ok_or_else(|| StoreError::Unsupported {
                path: self.autoboot.path().to_owned(),
                reason: format!("slot {slot} is not configured for this store"),
            })
    }

    /// The file's current content, or an empty file if it does not exist yet.
    fn read_existing(&self) -> Result<Autoboot, StoreError> {
        let bytes = match self.autoboot.read_all() {
            Ok(bytes) => bytes,
            Err(e) if e.is_not_found() => Vec::new(),
            Err(e) => return Err(e.into()),
        };
        Autoboot::parse(&bytes).map_err(|e| self.parse_error(e))
    }

    /// Reads the file: the state from the record, checked against what the firmware
    /// would boot, plus the firmware's view.
    pub(crate) fn read_with_choice(&self) -> Result<(BootState, BootChoice), StoreError> {
        let bytes = self.autoboot.read_all()?;
        let doc = Autoboot::parse(&bytes).map_err(|e| self.parse_error(e))?;
        let records = doc.comments_starting(record::PREFIX);
        let line = match records.as_slice() {
            [one] => *one,
            [] => {
                return Err(self.corrupt(format!(
                    "no `{}` record; write one with `skerryctl boot init`",
                    record::PREFIX
                )))
            }
            _ => return Err(self.corrupt("more than one skerry-boot-state record".into())),
        };
        let slots = record::parse(line).map_err(|e| self.corrupt(e))?;
        self.check_slot_set(&slots)?;
        let state = BootState::from_parts(slots, TRYBOOT_TRIES)?;
        let choice = doc.boot_choice().map_err(|e| self.parse_error(e))?;
        self.check_agreement(&state, &choice)?;
        Ok((state, choice))
    }

    fn check_slot_set(&self, slots: &[SlotState]) -> Result<(), StoreError> {
        for (i, (name, number)) in self.slots.iter().enumerate() {
            if self.slots[..i].iter().any(|(_, n)| n == number) {
                return Err(StoreError::Unsupported {
                    path: self.autoboot.path().to_owned(),
                    reason: format!(
                        "slot {name} uses partition {number}, which another slot uses too"
                    ),
                });
            }
        }
        let same = slots.len() == self.slots.len()
            && self
                .slots
                .iter()
                .all(|(n, _)| slots.iter().any(|s| &s.name == n));
        if same {
            Ok(())
        } else {
            let found: Vec<&str> = slots.iter().map(|s| s.name.as_str()).collect();
            let want: Vec<&str> = self.slots.iter().map(|(n, _)| n.as_str()).collect();
            Err(StoreError::Unsupported {
                path: self.autoboot.path().to_owned(),
                reason: format!(
                    "the state has slots {} but this store is configured with {}",
                    found.join(","),
                    want.join(",")
                ),
            })
        }
    }

    /// The keys the firmware reads must say what the record says.
    fn check_agreement(&self, state: &BootState, choice: &BootChoice) -> Result<(), StoreError> {
        let (normal, tryboot) = self.partitions_for(state)?;
        let mut problems = Vec::new();
        if !choice.tryboot_a_b {
            problems.push("tryboot_a_b=1 is missing from [all]".to_owned());
        }
        if choice.normal != Some(normal) {
            problems.push(format!(
                "[all] boot_partition is {:?}, the record's first good slot is partition {normal}",
                choice.normal
            ));
        }
        if trial_with_boot_ahead(state).is_some() && choice.tryboot != Some(tryboot) {
            problems.push(format!(
                "[tryboot] boot_partition is {:?}, the slot on trial is partition {tryboot}",
                choice.tryboot
            ));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(self.corrupt(format!(
                "the firmware keys disagree with the skerry-boot-state record: {}",
                problems.join("; ")
            )))
        }
    }

    /// Rewrites the file as exactly one sector in place (see [`FILE_LEN`]).
    fn write_in_place(&mut self, text: Vec<u8>) -> Result<(), StoreError> {
        let bytes = fixed_length(text).map_err(|len| StoreError::Unsupported {
            path: self.autoboot.path().to_owned(),
            reason: format!(
                "autoboot.txt would be {len} bytes; a power-safe rewrite on FAT needs it to fit \
                 one {FILE_LEN}-byte sector (remove comments or sections the firmware does not need)"
            ),
        })?;
        let len = match self.autoboot.len() {
            Err(e) if e.is_not_found() => 0,
            other => other?,
        };
        if len != FILE_LEN as u64 {
            // The first rewrite of a file of another length (`init`, a hand-made file)
            // changes its length, which no in-place write can do atomically; the atomic
            // replace does it on POSIX filesystems, and on FAT it is this one write.
            return Ok(self.autoboot.replace_all(&bytes)?);
        }
        self.autoboot.write_at(0, &bytes)?;
        Ok(self.autoboot.flush()?)
    }

    /// `[all]`'s partition (the first good slot) and `[tryboot]`'s (the slot on trial,
    /// with its one boot still ahead, or the same as `[all]` otherwise).
    fn partitions_for(&self, state: &BootState) -> Result<(u32, u32), StoreError> {
        let good = state
            .slots()
            .iter()
            .find(|s| s.status == SlotStatus::Good)
            .ok_or(crate::state::BootError::NoGoodSlot)?;
        let normal = self.partition(&good.name)?;
        let tryboot = match trial_with_boot_ahead(state) {
            Some(t) => self.partition(t)?,
            None => normal,
        };
        Ok((normal, tryboot))
    }

    /// The slot on `partition`, if one is configured there.
    pub(crate) fn slot_at(&self, partition: u32) -> Option<SlotName> {
        self.slots
            .iter()
            .find(|(_, p)| *p == partition)
            .map(|(n, _)| n.clone())
    }
}

impl<M: Medium> BootStore for TrybootStore<M> {
    fn load(&self) -> Result<BootState, StoreError> {
        self.read_with_choice().map(|(state, _)| state)
    }

    fn commit(&mut self, state: &BootState) -> Result<(), StoreError> {
        state.check()?;
        if state.tries() != TRYBOOT_TRIES {
            return Err(StoreError::Unsupported {
                path: self.autoboot.path().to_owned(),
                reason: format!(
                    "tryboot gives a trial exactly {TRYBOOT_TRIES} boot, so tries must be {TRYBOOT_TRIES}, got {}",
                    state.tries()
                ),
            });
        }
        self.check_slot_set(state.slots())?;
        let (normal, tryboot) = self.partitions_for(state)?;
        let mut doc = self.read_existing()?;
        doc.set_partitions(normal, tryboot)
            .map_err(|e| self.parse_error(e))?;
        doc.set_top_comment(record::PREFIX, &record::render(state.slots()));
        self.write_in_place(doc.to_bytes())
    }

    fn max_tries(&self) -> u8 {
        TRYBOOT_TRIES
    }
}

/// The slot on trial whose one boot is still ahead. `[tryboot]` names only it: once the
/// boot is used, a stray `reboot "0 tryboot"` must not start the spent trial again.
fn trial_with_boot_ahead(state: &BootState) -> Option<&SlotName> {
    state
        .slots()
        .iter()
        .find(|s| matches!(s.status, SlotStatus::Trial { tries_left } if tries_left > 0))
        .map(|s| &s.name)
}

/// `text` padded to [`FILE_LEN`] with a final `#` comment line, after dropping the
/// padding line an earlier rewrite added; the length it would need if it does not fit.
fn fixed_length(mut text: Vec<u8>) -> Result<Vec<u8>, usize> {
    while text.last() == Some(&b'\n') && text.len() >= 2 {
        let body = &text[..text.len() - 1];
        let start = body.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1);
        let line = body[start..].strip_suffix(b"\r").unwrap_or(&body[start..]);
        if line.len() >= 2 && line.iter().all(|&b| b == b'#') {
            text.truncate(start);
        } else {
            break;
        }
    }
    // The padding line ends like the file's lines do.
    let eol: &[u8] = if text.windows(2).any(|w| w == b"\r\n") {
        b"\r\n"
    } else {
        b"\n"
    };
    if !text.is_empty() && text.last() != Some(&b'\n') {
        text.extend_from_slice(eol);
    }
    // The padding line is at least "##", so it is never mistaken for content.
    let needed = text.len() + 2 + eol.len();
    if needed > FILE_LEN {
        return Err(needed);
    }
    text.resize(FILE_LEN - eol.len(), b'#');
    text.extend_from_slice(eol);
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padding_is_replaced_not_stacked() {
        let once = fixed_length(b"tryboot_a_b=1\n".to_vec()).unwrap();
        assert_eq!(once.len(), FILE_LEN);
        assert!(once.starts_with(b"tryboot_a_b=1\n##"));
        assert_eq!(fixed_length(once.clone()).unwrap(), once);
        let crlf = fixed_length(b"a=1\r\n####\r\n".to_vec()).unwrap();
        assert!(crlf.starts_with(b"a=1\r\n##") && crlf.ends_with(b"#\r\n"));
        assert_eq!(crlf.len(), FILE_LEN);
    }

    #[test]
    fn too_long_a_file_is_refused() {
        assert_eq!(fixed_length(vec![b'x'; 600]), Err(604));
    }
}
