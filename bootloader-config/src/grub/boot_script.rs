//! The boot script on the EFI system partition, and how a release replaces it without
//! a power cut ever leaving GRUB a torn one.
//!
//! The ESP (FAT: no atomic rename) holds two script names side by side in `EFI/BOOT`:
//! [`PRIMARY_SCRIPT`] (`grub.cfg`, what the image builder writes) and
//! [`SECOND_SCRIPT`] (`grub.b.cfg`). The environment variable [`SCRIPT_VAR`] names the
//! one GRUB runs; [`VERSION_VAR`] is that script's version, so a device knows what it has.
//!
//! # The early config
//! [`early_config`] is the text built into `BOOTX64.EFI`. GRUB runs a config embedded
//! with `grub-mkimage -c` with its rescue parser, which knows no `if` (seen under OVMF:
//! every line of both branches ran), so the text is plain commands that mean the same
//! to the rescue and the normal parser (`grub-mkstandalone`'s memdisk config): `set`,
//! a whitelisted `load_env` (only [`SCRIPT_VAR`], so nothing else in the environment can
//! steer it), `echo`, `configfile`. It loads the name from the second copy
//! `grubenv.b`, then from the block `grubenv` (the block wins where it has one), runs
//! that script; if it cannot be run (missing), the second copy's choice; then
//! [`PRIMARY_SCRIPT`]. A `configfile` that runs a script does not come back: its menu
//! boots.
//!
//! No generation check is needed for this one variable: while the environment is
//! written (the switch), both scripts are complete, so any name either copy holds, even
//! from a block torn mid-line (a name that does not exist, so the next choice runs),
//! runs a whole script. While a script is being written, both copies are whole, agree,
//! and name the other one (the update settles them first, see below).
//!
//! # An update ([`BootScriptUpdate::apply`])
//! 0. The two environment copies are **settled**: unless both are whole and name the
//!    same script, both are rewritten from the authoritative one (the block if whole,
//!    else the second copy; the store rewrites a torn block first, never the only whole
//!    copy). So no update writes a file a torn copy still names, and no torn block is
//!    left for GRUB's `save_env` (the fragment's, during a trial), which keeps every
//!    variable it does not name from the block as it is.
//! 1. The new script is written to the name GRUB does **not** run now (beside the old
//!    one, never over it), cut to its length, synced, and the directory synced.
//! 2. It is read back and compared.
//! 3. One [`GrubEnvStore`] commit switches [`SCRIPT_VAR`] to it and records
//!    [`VERSION_VAR`] (the store writes the second copy, flushes, then the block, flushes).
//!
//! A cut in step 0 or 1 leaves both copies naming the old, complete script (a cut in
//! step 0 rewrites the same name). A cut in step 3 leaves each copy old, new or torn;
//! every name they can hold is of a complete script, the new one durable since step 1.
//! The update run again at the next start settles the copies (also when the script is
//! in place already). So every cut boots a whole script: `tests/boot_script_power_cut.rs`
//! cuts each step on the FAT model and lets real GRUB (`grub-emu`) decide.
//!
//! The update is idempotent (the same version and bytes: nothing is written), refuses a
//! script larger than [`MAX_SCRIPT_SIZE`] or empty, a version older than the installed
//! one, and the installed version with other bytes. A boot script must keep booting
//! every slot a device may still roll back to: a rollback keeps the newer script.

use std::ffi::OsStr;
use std::path::PathBuf;

use skerry_medium::dir::Directory;
use skerry_medium::{FsMedium, MediumError};

use crate::grub::envblk;
use crate::grub::store::{GrubEnvStore, SECOND_COPY_SUFFIX};
use crate::store::StoreError;

/// The boot script the image builder writes, and GRUB's choice when the environment
/// names none.
pub const PRIMARY_SCRIPT: &str = "grub.cfg";
/// The second name, written beside [`PRIMARY_SCRIPT`].
pub const SECOND_SCRIPT: &str = "grub.b.cfg";
/// The environment variable naming the script GRUB runs.
pub const SCRIPT_VAR: &str = "SKERRY_BOOT_SCRIPT";
/// The environment variable holding the running script's version.
pub const VERSION_VAR: &str = "SKERRY_BOOT_SCRIPT_VERSION";
/// The environment block's name beside the scripts.
pub const ENV_FILE: &str = "grubenv";
/// The largest boot script accepted (the generated ones are a few KiB).
pub const MAX_SCRIPT_SIZE: usize = 256 << 10;

/// The config built into `BOOTX64.EFI`: picks the boot script in `$cmdpath` (see the
/// module docs). Plain commands, for `grub-mkimage -c` (GRUB's rescue parser) and
/// `grub-mkstandalone`'s memdisk config alike; it needs the `loadenv`, `echo`,
/// `configfile` and `normal` modules (`normal` parses the script `configfile` runs).
pub fn early_config() -> String {
    let second = format!("{ENV_FILE}{SECOND_COPY_SUFFIX}");
    let mut s = format!(
        "set {SCRIPT_VAR}={PRIMARY_SCRIPT}\n\
         load_env -f \"${{cmdpath}}/{second}\" --skip-sig {SCRIPT_VAR}\n\
         set skerry_second=\"${{{SCRIPT_VAR}}}\"\n\
         load_env -f \"${{cmdpath}}/{ENV_FILE}\" --skip-sig {SCRIPT_VAR}\n"
    );
    for (script, why) in [
        (format!("${{{SCRIPT_VAR}}}"), ""),
        (
            "${skerry_second}".to_owned(),
            "the block's choice could not be run; the second copy's",
        ),
        (PRIMARY_SCRIPT.to_owned(), "neither choice could be run"),
    ] {
        if !why.is_empty() {
            s.push_str(&format!("echo \"skerry: {why}\"\n"));
        }
        s.push_str(&format!(
            "echo \"{RUNNING}{script}\"\nconfigfile \"${{cmdpath}}/{script}\"\n"
        ));
    }
    s.push_str("echo \"skerry: no boot script could be run from ${cmdpath}\"\n");
    s
}

/// What the early config prints before it runs a script (the script's name follows).
pub const RUNNING: &str = "skerry: running boot script ";

/// Why a boot script update was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum BootScriptError {
    #[error("the boot script is {len} bytes; at most {MAX_SCRIPT_SIZE} are accepted")]
    TooLarge { len: usize },
    #[error("the boot script is empty")]
    Empty,
    #[error("boot script version {offered} is older than version {installed} on the ESP; refusing to go back")]
    Older { offered: u32, installed: u32 },
    #[error("boot script version {version} is on the ESP with other bytes; a new script needs a new version")]
    SameVersionDiffers { version: u32 },
    #[error("{VERSION_VAR} in the environment is {value:?}, not a version number")]
    BadVersion { value: String },
    #[error("the new boot script at {} reads back different from what was written", path.display())]
    ReadBack { path: PathBuf },
    #[error("cannot write the boot script {}", path.display())]
    Medium {
        path: PathBuf,
        #[source]
        source: MediumError,
    },
    #[error("the ESP's environment: {0}")]
    Env(#[from] StoreError),
}

/// What the ESP runs now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstalledScript {
    /// The file name GRUB runs ([`PRIMARY_SCRIPT`] or [`SECOND_SCRIPT`]).
    pub name: &'static str,
    /// Its version; 0 when the environment records none (a factory ESP).
    pub version: u32,
}

/// What [`BootScriptUpdate::apply`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// The script is now the one GRUB runs.
    Installed(InstalledScript),
    /// The ESP already runs this version with these bytes; nothing was written.
    Unchanged(InstalledScript),
}

/// The boot scripts and environment of one ESP directory (`EFI/BOOT`).
#[derive(Debug)]
pub struct BootScriptUpdate<D: Directory + Clone> {
    dir: D,
}

impl<D: Directory + Clone> BootScriptUpdate<D> {
    /// The ESP directory holding `grubenv`, `grubenv.b` and the scripts.
    pub fn new(dir: D) -> Self {
        BootScriptUpdate { dir }
    }

    /// Gives the directory back.
    pub fn into_dir(self) -> D {
        self.dir
    }

    fn store(&self) -> GrubEnvStore<FsMedium<D>> {
        GrubEnvStore::new(FsMedium::in_dir(self.dir.clone(), ENV_FILE))
    }

    fn medium_error(&self, name: &str) -> impl FnOnce(MediumError) -> BootScriptError {
        let path = self.dir.path().join(name);
        move |source| BootScriptError::Medium { path, source }
    }

    /// The script GRUB runs now and its version, as the early config reads them.
    pub fn installed(&self) -> Result<InstalledScript, BootScriptError> {
        let vars = self.store().variables()?;
        let name = match vars.get(SCRIPT_VAR) {
            Some(Ok(SECOND_SCRIPT)) => SECOND_SCRIPT,
            _ => PRIMARY_SCRIPT,
        };
        let version = match vars.get_bytes(VERSION_VAR.as_bytes()) {
            None => 0,
            Some(raw) => std::str::from_utf8(raw)
                .ok()
                .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| BootScriptError::BadVersion {
                    value: String::from_utf8_lossy(raw).into_owned(),
                })?,
        };
        Ok(InstalledScript { name, version })
    }

    fn read(&self, name: &str) -> Result<Option<Vec<u8>>, BootScriptError> {
        self.read_bounded(name, MAX_SCRIPT_SIZE)
    }

    /// The content of `name`; `None` when it is missing or larger than `limit`.
    fn read_bounded(&self, name: &str, limit: usize) -> Result<Option<Vec<u8>>, BootScriptError> {
        let os = OsStr::new(name);
        let len = match self.dir.len(os) {
            Err(e) if e.is_not_found() => return Ok(None),
            other => other.map_err(self.medium_error(name))?,
        };
        if len > limit as u64 {
            return Ok(None);
        }
        self.dir
            .read_at(os, 0, len as usize)
            .map(Some)
            .map_err(self.medium_error(name))
    }

    /// Makes `script` (at `version`) the boot script GRUB runs, power-safe (see the
    /// module docs).
    pub fn apply(&mut self, script: &[u8], version: u32) -> Result<Applied, BootScriptError> {
        if script.len() > MAX_SCRIPT_SIZE {
            return Err(BootScriptError::TooLarge { len: script.len() });
        }
        if script.is_empty() {
            return Err(BootScriptError::Empty);
        }
        let installed = self.installed()?;
        if version < installed.version {
            return Err(BootScriptError::Older {
                offered: version,
                installed: installed.version,
            });
        }
        if version == installed.version {
            if self.read(installed.name)?.as_deref() == Some(script) {
                self.settle_copies()?;
                return Ok(Applied::Unchanged(installed));
            }
            return Err(BootScriptError::SameVersionDiffers { version });
        }
        self.settle_copies()?;
        let target = if installed.name == SECOND_SCRIPT {
            PRIMARY_SCRIPT
        } else {
            SECOND_SCRIPT
        };
        self.write_beside(target, script)?;
        let written = self.read(target)?;
        if written.as_deref() != Some(script) {
            return Err(BootScriptError::ReadBack {
                path: self.dir.path().join(target),
            });
        }
        let version_text = version.to_string();
        self.store().commit_variables(&[
            (SCRIPT_VAR, Some(target)),
            (VERSION_VAR, Some(&version_text)),
        ])?;
        Ok(Applied::Installed(InstalledScript {
            name: target,
            version,
        }))
    }

    /// Whether both copies of the environment are whole and name the same script (see
    /// the module docs): what the update leaves, and needs before it writes a script.
    pub fn copies_agree(&self) -> Result<bool, BootScriptError> {
        let second = format!("{ENV_FILE}{SECOND_COPY_SUFFIX}");
        let mut names = Vec::new();
        for name in [ENV_FILE, second.as_str()] {
            let Some(bytes) = self.read_bounded(name, envblk::DEFAULT_SIZE * 64)? else {
                return Ok(false);
            };
            match envblk::decode(&bytes) {
                Ok(vars) if envblk::is_whole(&vars) => {
                    names.push(vars.get_bytes(SCRIPT_VAR.as_bytes()).map(<[u8]>::to_vec))
                }
                _ => return Ok(false),
            }
        }
        Ok(names[0] == names[1])
    }

    /// Rewrites both copies from the authoritative one unless they agree.
    fn settle_copies(&mut self) -> Result<(), BootScriptError> {
        if !self.copies_agree()? {
            self.store().commit_variables(&[])?;
        }
        Ok(())
    }

    /// Writes `script` as `name` (the name GRUB does not run) and makes it durable: its
    /// bytes, its length and its directory entry.
    fn write_beside(&mut self, name: &str, script: &[u8]) -> Result<(), BootScriptError> {
        let os = OsStr::new(name);
        let path = self.dir.path().join(name);
        let err = |source| BootScriptError::Medium {
            path: path.clone(),
            source,
        };
        self.dir.write_at(os, 0, script).map_err(err)?;
        self.dir.set_len(os, script.len() as u64).map_err(err)?;
        self.dir.sync_file(os).map_err(err)?;
        self.dir.sync_dir().map_err(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn early_config_is_plain_commands_loading_one_variable() {
        let text = early_config();
        for needle in [
            "load_env -f \"${cmdpath}/grubenv.b\" --skip-sig SKERRY_BOOT_SCRIPT\n",
            "load_env -f \"${cmdpath}/grubenv\" --skip-sig SKERRY_BOOT_SCRIPT\n",
            "configfile \"${cmdpath}/${SKERRY_BOOT_SCRIPT}\"\n",
            "configfile \"${cmdpath}/${skerry_second}\"\n",
            "configfile \"${cmdpath}/grub.cfg\"\n",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in\n{text}");
        }
        assert_eq!(text.matches("load_env").count(), 2, "{text}");
        // The second copy first, so the block's choice wins.
        assert!(text.find("grubenv.b").unwrap() < text.find("grubenv\"").unwrap());
        // Nothing the rescue parser does not know.
        for line in text.lines() {
            let word = line.split_whitespace().next().unwrap_or("");
            assert!(
                ["set", "load_env", "echo", "configfile"].contains(&word),
                "{line:?}"
            );
        }
    }
}
