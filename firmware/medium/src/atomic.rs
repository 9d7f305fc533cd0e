//! The one atomic whole-file write of the workspace: [`write_atomic`] on the host,
//! [`replace_file`] on any [`Directory`].
//!
//! The steps, and why each is there:
//! 1. write the new bytes to `NAME.tmp` in the same directory (a rename across
//!    filesystems is a copy), with the old file's mode (0644 for a new file);
//! 2. sync the temp file, so the rename cannot become durable before its data;
//! 3. rename it over `NAME` (atomic on POSIX filesystems: readers see old or new);
//! 4. sync the directory, so the rename itself survives a power cut.
//!
//! The temp name is fixed (`NAME.tmp`), so a crash leaves at most one stray file that
//! the owner can recognise and delete; two writers of the same file at once are not
//! supported.
//!
//! On FAT there is no atomic rename: steps 3–4 then rewrite `NAME` in place, which a
//! power cut can tear. Stores that live on FAT write in place with their own torn-write
//! detection instead (see `skerry-boot-state`'s GRUB and tryboot stores).

use std::ffi::{OsStr, OsString};
use std::path::Path;

use crate::dir::{split, Directory, HostDir};
use crate::error::MediumError;

/// The temporary name `name` is written under before the rename.
pub fn temp_name(name: &OsStr) -> OsString {
    let mut temp = name.to_os_string();
    temp.push(".tmp");
    temp
}

/// Replaces `name` in `dir` with `bytes` atomically (the steps in the module docs).
pub fn replace_file<D: Directory + ?Sized>(
    dir: &mut D,
    name: &OsStr,
    bytes: &[u8],
) -> Result<(), MediumError> {
    let temp = temp_name(name);
    dir.write_new(&temp, name, bytes)?;
    dir.sync_file(&temp)?;
    dir.rename(&temp, name)?;
    dir.sync_dir()
}

/// Replaces the file at `path` with `bytes` atomically. The directory must exist.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), MediumError> {
    let (dir, name) = split(path)?;
    replace_file(&mut HostDir::new(dir), name, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn new_files_get_0644_and_no_temp_is_left() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        write_atomic(&path, b"one").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"one");
        assert_eq!(mode(&path), 0o644);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_missing_directory_is_named_not_the_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("no-such-dir");
        let err = write_atomic(&missing.join("grubenv"), b"x").unwrap_err();
        assert_eq!(err.path(), missing);
        assert!(err.to_string().contains("does not exist"), "{err}");
        assert!(!missing.exists());
    }

    #[test]
    fn the_old_mode_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("root.json");
        std::fs::write(&path, b"old").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        write_atomic(&path, b"new").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        assert_eq!(mode(&path), 0o600);
    }

    #[test]
    fn a_missing_directory_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("no/such/file");
        let err = write_atomic(&path, b"x").unwrap_err();
        assert!(err.path().starts_with(dir.path().join("no")), "{err}");
    }
}
