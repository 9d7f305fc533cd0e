//! Opening the store a [`StoreSpec`] names.
//!
//! Before any byte is read, the path is checked to be the kind of thing the store lives
//! in: a U-Boot or GRUB environment, or a GPT disk, is a regular file or a block device;
//! a tryboot store is a directory whose `autoboot.txt`, if present, is a regular file.
//! A directory, a FIFO (opening one blocks until a writer comes), a socket or a character
//! device such as `/dev/null` is refused with the reason, and an environment file larger
//! than any real one is refused before it is read.

use std::fs::FileType;
use std::os::unix::fs::FileTypeExt;
use std::path::Path;

use crate::gpt::GptStore;
use crate::grub::GrubEnvStore;
use crate::medium::FileMedium;
use crate::spec::StoreSpec;
use crate::store::{BootStore, StoreError};
use crate::tryboot::{TrybootStore, AUTOBOOT_FILE};
use crate::uboot::{UbootEnvStore, UbootLayout};

/// The largest GRUB environment file we read: GRUB's own block is 1 KiB.
pub const MAX_GRUB_ENV_FILE: u64 = 1 << 20;
/// The largest `autoboot.txt` we read: the firmware's is a few lines.
pub const MAX_AUTOBOOT_FILE: u64 = 64 << 10;

/// Whether the store's file may be missing (it is created by `init`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Presence {
    Required,
    MayBeMissing,
}

impl StoreSpec {
    /// Opens an existing store: its file, device or directory must exist.
    pub fn open(&self) -> Result<Box<dyn BootStore>, StoreError> {
        self.check_paths(Presence::Required)?;
        self.open_with(|path| Ok(FileMedium::open(path)?))
    }

    /// Opens a store for `init`: a U-Boot or GRUB environment file may not exist yet and
    /// is created by the first commit. GPT disks and tryboot directories must exist.
    pub fn open_for_init(&self) -> Result<Box<dyn BootStore>, StoreError> {
        self.check_paths(Presence::MayBeMissing)?;
        self.open_with(|path| Ok(FileMedium::create(path)))
    }

    /// The checks [`StoreSpec::open`] makes before it opens anything.
    pub(crate) fn check_existing(&self) -> Result<(), StoreError> {
        self.check_paths(Presence::Required)
    }

    /// Refuses a path that is not what this kind of store lives in.
    fn check_paths(&self, presence: Presence) -> Result<(), StoreError> {
        match self {
            StoreSpec::Uboot { path, .. } => check_file(path, presence, "U-Boot environment", None),
            StoreSpec::Grub { path } => check_file(
                path,
                presence,
                "GRUB environment block",
                Some(MAX_GRUB_ENV_FILE),
            ),
            StoreSpec::Gpt { disk, .. } => check_file(disk, Presence::Required, "GPT disk", None),
            StoreSpec::Tryboot { dir, .. } => {
                let meta = metadata(dir)?;
                if !meta.is_dir() {
                    return Err(wrong_kind(
                        dir,
                        meta.file_type(),
                        "a tryboot store is the boot partition's directory (holding autoboot.txt)",
                    ));
                }
                // Without a record, only `init` can do anything; the store says so itself.
                check_file(
                    &dir.join(AUTOBOOT_FILE),
                    Presence::MayBeMissing,
                    "autoboot.txt",
                    Some(MAX_AUTOBOOT_FILE),
                )
            }
        }
    }

    fn open_with(
        &self,
        env_medium: impl Fn(&std::path::Path) -> Result<FileMedium, StoreError>,
    ) -> Result<Box<dyn BootStore>, StoreError> {
        Ok(match self {
            StoreSpec::Uboot {
                path,
                offset,
                size,
                redundant,
            } => Box::new(UbootEnvStore::new(
                env_medium(path)?,
                UbootLayout {
                    offset: *offset,
                    size: *size,
                    redundant: *redundant,
                },
            )),
            StoreSpec::Grub { path } => Box::new(GrubEnvStore::new(env_medium(path)?)),
            StoreSpec::Gpt { disk, slots } => {
                Box::new(GptStore::new(FileMedium::open(disk)?, slots.clone()))
            }
            StoreSpec::Tryboot { dir, slots } => {
                Box::new(TrybootStore::open_dir(dir, slots.clone())?)
            }
        })
    }
}

fn metadata(path: &Path) -> Result<std::fs::Metadata, StoreError> {
    std::fs::metadata(path).map_err(|source| StoreError::Io {
        path: path.to_owned(),
        source,
    })
}

/// Requires `path` to be a regular file (at most `max_len` bytes) or a block device,
/// or, when `presence` allows, not to exist yet.
fn check_file(
    path: &Path,
    presence: Presence,
    what: &str,
    max_len: Option<u64>,
) -> Result<(), StoreError> {
    let meta = match std::fs::metadata(path) {
        Err(e)
            if e.kind() == std::io::ErrorKind::NotFound && presence == Presence::MayBeMissing =>
        {
            return Ok(())
        }
        other => other.map_err(|source| StoreError::Io {
            path: path.to_owned(),
            source,
        })?,
    };
    let kind = meta.file_type();
    if kind.is_block_device() {
        return Ok(());
    }
    if !kind.is_file() {
        return Err(wrong_kind(
            path,
            kind,
            &format!("a {what} is kept in a regular file or a block device"),
        ));
    }
    match max_len {
        Some(max) if meta.len() > max => Err(StoreError::Unsupported {
            path: path.to_owned(),
            reason: format!(
                "it is {} bytes, more than any {what} (at most {max} bytes); is this the right file?",
                meta.len()
            ),
        }),
        _ => Ok(()),
    }
}

fn wrong_kind(path: &Path, kind: FileType, expected: &str) -> StoreError {
    let found = if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else {
        "a regular file"
    };
    StoreError::Unsupported {
        path: path.to_owned(),
        reason: format!("it is {found}; {expected}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(spec: &str) -> String {
        let spec: StoreSpec = spec.parse().unwrap();
        match spec.open() {
            Ok(_) => panic!("{spec} opened"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn a_directory_is_not_an_environment_file() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display();
        for spec in [
            format!("grub:{d}"),
            format!("uboot:{d}"),
            format!("gpt:{d},A=2,B=3"),
        ] {
            let e = err(&spec);
            assert!(e.contains("it is a directory"), "{spec}: {e}");
        }
    }

    #[test]
    fn a_character_device_and_a_file_for_tryboot_are_refused() {
        assert!(err("grub:/dev/null").contains("a character device"));
        assert!(err("tryboot:/dev/null,A=2,B=3").contains("boot partition's directory"));
    }

    #[test]
    fn an_oversized_grub_file_is_refused_before_reading() {
        let dir = tempfile::tempdir().unwrap();
        let env = dir.path().join("grubenv");
        std::fs::File::create(&env)
            .unwrap()
            .set_len(MAX_GRUB_ENV_FILE + 1)
            .unwrap();
        let e = err(&format!("grub:{}", env.display()));
        assert!(e.contains("at most 1048576 bytes"), "{e}");
    }

    #[test]
    fn init_accepts_a_missing_env_file_but_not_a_missing_disk() {
        let dir = tempfile::tempdir().unwrap();
        let grub: StoreSpec = format!("grub:{}/new", dir.path().display())
            .parse()
            .unwrap();
        assert!(grub.open_for_init().is_ok());
        let gpt: StoreSpec = format!("gpt:{}/no.img,A=2,B=3", dir.path().display())
            .parse()
            .unwrap();
        assert!(gpt.open_for_init().is_err());
    }
}
