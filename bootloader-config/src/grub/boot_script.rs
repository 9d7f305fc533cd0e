//! The boot script on the EFI system partition, and how a release replaces it without
//! a power cut ever leaving GRUB a torn one.
//!
//! The ESP (FAT: no atomic rename) holds two script names side by side in `EFI/BOOT`:
//! [`PRIMARY_SCRIPT`] (`grub.cfg`, what the image builder writes) and
//! [`SECOND_SCRIPT`] (`grub.b.cfg`). The environment variable [`SCRIPT_VAR`] names the
//! one GRUB runs; [`VERSION_VAR`] is that script's version, so a device knows what it has.
//!
//! # The early config
//! [`early_config`] is the text built into `BOOTX64.EFI`. It needs GRUB's normal-mode
//! parser, so it goes in as the standalone image's memdisk config (`grub-mkstandalone
//! -O x86_64-efi ... boot/grub/grub.cfg=EARLY`). Not as `grub-mkimage -c EARLY`: GRUB
//! runs such a config with its rescue parser, which does not know `if`, so every line
//! runs in turn (seen under OVMF: both branches' messages printed). It loads only [`SCRIPT_VAR`]
//! and the block's generations from `${cmdpath}/grubenv` (a whitelisted `load_env`, so
//! nothing else in the environment can steer it); when the block is torn (generations
//! differ) or unreadable, it loads the second copy `grubenv.b`, as the slot-selection
//! fragment does. It runs the named script, or, if that file is missing, the other one.
//!
//! # An update ([`BootScriptUpdate::apply`])
//! 1. The new script is written to the name GRUB does **not** run now (beside the old
//!    one, never over it), cut to its length, synced, and the directory synced.
//! 2. It is read back and compared.
//! 3. One [`GrubEnvStore`] commit switches [`SCRIPT_VAR`] to it and records
//!    [`VERSION_VAR`] (the store writes the second copy, flushes, then the block, flushes).
//!
//! A cut before step 3's block write is durable leaves the variable on the old, complete
//! script (the torn new file is never named). A cut inside the block leaves it torn; the
//! early config then reads the second copy, which is already whole and names the new
//! script, itself complete and durable since step 1. So every cut boots a whole script.
//!
//! Run again after a cut inside the block's write, the update rewrites the torn block
//! from its whole second copy: GRUB's `save_env` (the fragment's, during a trial) keeps
//! every variable it does not name from the block as it is, so a torn block left alone
//! could take the switch back.
//!
//! The update is idempotent (the same version and bytes: nothing is written), refuses a
//! script larger than [`MAX_SCRIPT_SIZE`] or empty, a version older than the installed
//! one, and the installed version with other bytes. A boot script must keep booting
//! every slot a device may still roll back to: a rollback keeps the newer script.

use std::ffi::OsStr;
use std::path::PathBuf;

use skerry_medium::dir::Directory;
use skerry_medium::{FsMedium, MediumError};

use crate::grub::envblk::{self, GEN_HEAD, GEN_TAIL};
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
/// module docs). It needs GRUB's `loadenv`, `test`, `echo`, `configfile` and `normal`
/// modules and the normal-mode parser (the memdisk config of `grub-mkstandalone`, not
/// `grub-mkimage -c`).
pub fn early_config() -> String {
    format!(
        "# Skerry early config: runs the boot script on the ESP that the environment names;\n\
         # generated, do not edit. Only {SCRIPT_VAR} and the generations are loaded.\n\
         {SCRIPT_VAR}=\"\"\n\
         {GEN_HEAD}=\"\"\n\
         {GEN_TAIL}=\"\"\n\
         skerry_env_whole=\"\"\n\
         if load_env -f \"${{cmdpath}}/{ENV_FILE}\" --skip-sig {SCRIPT_VAR} {GEN_HEAD} {GEN_TAIL}; then\n\
         \x20 if [ \"${GEN_HEAD}\" = \"${GEN_TAIL}\" ]; then\n\
         \x20   skerry_env_whole=1\n\
         \x20 fi\n\
         fi\n\
         if [ -z \"$skerry_env_whole\" ]; then\n\
         \x20 echo \"skerry: the environment block is torn or unreadable; loading its second copy\"\n\
         \x20 {SCRIPT_VAR}=\"\"\n\
         \x20 load_env -f \"${{cmdpath}}/{ENV_FILE}{SECOND_COPY_SUFFIX}\" --skip-sig {SCRIPT_VAR} {GEN_HEAD} {GEN_TAIL}\n\
         fi\n\
         if [ \"${SCRIPT_VAR}\" = \"{SECOND_SCRIPT}\" ]; then\n\
         \x20 skerry_script={SECOND_SCRIPT}\n\
         \x20 skerry_other={PRIMARY_SCRIPT}\n\
         else\n\
         \x20 skerry_script={PRIMARY_SCRIPT}\n\
         \x20 skerry_other={SECOND_SCRIPT}\n\
         fi\n\
         if [ ! -f \"${{cmdpath}}/$skerry_script\" ]; then\n\
         \x20 echo \"skerry: boot script $skerry_script is missing; running $skerry_other\"\n\
         \x20 skerry_script=$skerry_other\n\
         fi\n\
         echo \"skerry: boot script $skerry_script\"\n\
         configfile \"${{cmdpath}}/$skerry_script\"\n\
         echo \"skerry: no boot script could be run from $cmdpath\"\n"
    )
}

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
        let os = OsStr::new(name);
        let len = match self.dir.len(os) {
            Err(e) if e.is_not_found() => return Ok(None),
            other => other.map_err(self.medium_error(name))?,
        };
        if len > MAX_SCRIPT_SIZE as u64 {
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
                self.repair_torn_block()?;
                return Ok(Applied::Unchanged(installed));
            }
            return Err(BootScriptError::SameVersionDiffers { version });
        }
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

    /// Whether the environment block itself is whole (its generations agree). A cut
    /// inside the switch leaves it torn, and both GRUB and [`installed`](Self::installed)
    /// then read the second copy; but GRUB's `save_env` rewrites only the variables it
    /// names and keeps the rest from the torn block, which could take back the switch.
    pub fn block_is_whole(&self) -> Result<bool, BootScriptError> {
        let bytes = self.read_env(ENV_FILE)?;
        Ok(envblk::decode(&bytes).is_ok_and(|vars| envblk::is_whole(&vars)))
    }

    fn read_env(&self, name: &str) -> Result<Vec<u8>, BootScriptError> {
        let os = OsStr::new(name);
        let len = self.dir.len(os).map_err(self.medium_error(name))?;
        self.dir
            .read_at(os, 0, len.min(envblk::DEFAULT_SIZE as u64 * 64) as usize)
            .map_err(self.medium_error(name))
    }

    /// Rewrites a torn block (both copies) from the whole second copy, so no later
    /// `save_env` of GRUB's can bring back what the torn half holds.
    fn repair_torn_block(&mut self) -> Result<(), BootScriptError> {
        if !self.block_is_whole()? {
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
    fn early_config_loads_only_its_variables() {
        let text = early_config();
        for needle in [
            "load_env -f \"${cmdpath}/grubenv\" --skip-sig SKERRY_BOOT_SCRIPT SKERRY_GEN_HEAD SKERRY_GEN_TAIL; then\n",
            "load_env -f \"${cmdpath}/grubenv.b\" --skip-sig SKERRY_BOOT_SCRIPT",
            "configfile \"${cmdpath}/$skerry_script\"\n",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in\n{text}");
        }
        assert_eq!(text.matches("load_env").count(), 2, "{text}");
    }
}
