//! Leaving the initramfs: move `/proc`, `/sys` and `/dev` into the slot's root, free the
//! initramfs (its files are in RAM; nothing else would ever delete them), make the slot
//! `/` and exec the system stage from it.

use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::Path;

/// Where the slot is mounted before it becomes `/`.
pub const NEW_ROOT: &str = "/newroot";
/// The program the system stage runs as PID 1.
pub const SYSTEM_INIT: &str = "/sbin/skerryd";

/// Deletes everything under `dir` that lives on the device `dev` (the initramfs),
/// never descending into another filesystem (`/newroot`, the moved mounts).
pub fn delete_on_device(dir: &Path, dev: u64) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.dev() != dev {
            continue;
        }
        if meta.is_dir() {
            delete_on_device(&path, dev);
            let _ = std::fs::remove_dir(&path);
        } else {
            let _ = std::fs::remove_file(&path);
        }
    }
}

/// Moves the pseudo-filesystems, frees the initramfs, switches root and execs
/// [`SYSTEM_INIT`]. Returns only on failure, with what failed.
pub fn switch_and_exec() -> String {
    let new_root = Path::new(NEW_ROOT);
    for dir in ["/proc", "/sys", "/dev"] {
        let target = new_root.join(&dir[1..]);
        if let Err(e) = rustix::mount::mount_move(dir, &target) {
            return format!("moving {dir} to {}: {e}", target.display());
        }
    }
    if let Ok(meta) = std::fs::symlink_metadata("/") {
        delete_on_device(Path::new("/"), meta.dev());
    }
    if let Err(e) = std::env::set_current_dir(new_root) {
        return format!("entering {NEW_ROOT}: {e}");
    }
    if let Err(e) = rustix::mount::mount_move(".", "/") {
        return format!("moving {NEW_ROOT} to /: {e}");
    }
    if let Err(e) = rustix::process::chroot(".") {
        return format!("chroot into the slot: {e}");
    }
    if let Err(e) = std::env::set_current_dir("/") {
        return format!("entering the new /: {e}");
    }
    let error = std::process::Command::new(SYSTEM_INIT).env_clear().exec();
    format!("exec {SYSTEM_INIT}: {error}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deletes_the_tree_but_not_what_is_on_another_device() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("lib/modules/k")).unwrap();
        std::fs::write(dir.path().join("lib/modules/k/a.ko"), b"x").unwrap();
        std::fs::write(dir.path().join("init"), b"x").unwrap();
        std::os::unix::fs::symlink("/proc", dir.path().join("link")).unwrap();
        let dev = std::fs::metadata(dir.path()).unwrap().dev();
        // A device number nothing has: nothing is deleted.
        delete_on_device(dir.path(), dev.wrapping_add(1));
        assert!(dir.path().join("init").exists());
        delete_on_device(dir.path(), dev);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
