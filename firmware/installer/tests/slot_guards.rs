//! Slot guards in the library's install path: a target slot that is the seed (by path,
//! symlink or hard link), the booted slot, or mounted is refused before anything is
//! written; the caller's hook makes the slot unbootable before its first byte is
//! written, and a failing hook stops the install.

mod common;

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use common::{image, TestRepo};
use skerry_installer::guard::{check_slot_with, ActivationError};
use skerry_installer::install::NoProgress;
use skerry_installer::{install, InstallError, NoBootState, SlotActivation};

/// Records what the slot held when the hook ran, and can refuse.
struct Recorder {
    slot: PathBuf,
    seen: Rc<RefCell<Vec<Option<Vec<u8>>>>>,
    refuse: bool,
}

impl SlotActivation for Recorder {
    fn deactivate(&mut self) -> Result<(), ActivationError> {
        self.seen.borrow_mut().push(std::fs::read(&self.slot).ok());
        if self.refuse {
            return Err("the boot store is read-only".into());
        }
        Ok(())
    }
}

fn repo_with_release() -> TestRepo {
    let repo = TestRepo::new();
    repo.add("rpi4", "1.0.0", &image(200_000, 31));
    repo
}

#[test]
fn a_slot_that_is_the_seed_is_refused_by_path_symlink_and_hard_link() {
    let repo = repo_with_release();
    let seed = repo.path().join("a.img");
    std::fs::write(&seed, image(200_000, 30)).unwrap();
    let link = repo.path().join("a-link.img");
    std::os::unix::fs::symlink(&seed, &link).unwrap();
    let hard = repo.path().join("a-hard.img");
    std::fs::hard_link(&seed, &hard).unwrap();
    for slot in [&seed, &link, &hard] {
        let mut opts = repo.options(repo.file_transport(), "rpi4", slot);
        opts.seed = Some(seed.clone());
        let err = install(&opts, &mut NoBootState, &NoProgress).unwrap_err();
        assert!(matches!(err, InstallError::SlotIsSeed { .. }), "{err}");
    }
    assert_eq!(std::fs::read(&seed).unwrap(), image(200_000, 30));
}

#[test]
fn the_booted_slot_is_refused_even_through_a_link() {
    let repo = repo_with_release();
    let booted = repo.path().join("a.img");
    std::fs::write(&booted, b"running system").unwrap();
    let link = repo.path().join("by-partlabel-a");
    std::os::unix::fs::symlink(&booted, &link).unwrap();
    let mut opts = repo.options(repo.file_transport(), "rpi4", &link);
    opts.booted = Some(booted.clone());
    let err = install(&opts, &mut NoBootState, &NoProgress).unwrap_err();
    assert!(matches!(err, InstallError::SlotIsBooted { .. }), "{err}");
    assert_eq!(std::fs::read(&booted).unwrap(), b"running system");
}

#[test]
fn a_mounted_slot_is_refused_from_the_real_mount_table() {
    // "/" is always mounted; writing it would fail anyway, so a broken guard harms nothing.
    let repo = repo_with_release();
    let opts = repo.options(repo.file_transport(), "rpi4", Path::new("/"));
    let err = install(&opts, &mut NoBootState, &NoProgress).unwrap_err();
    assert!(
        matches!(&err, InstallError::SlotMounted { mount_point, .. } if mount_point == Path::new("/")),
        "{err}"
    );
}

#[test]
fn a_file_backed_slot_that_is_mounted_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let slot = tmp.path().join("b.img");
    std::fs::write(&slot, b"fs").unwrap();
    let sys = tmp.path().join("sys-block");
    let no_sys = tmp.path().join("none");
    let line = |source: &Path, point: &str| {
        format!(
            "40 27 7:3 / {point} rw,relatime - ext4 {} rw\n",
            source.display()
        )
    };
    // As a mount's source (shown as the file itself).
    let table = line(&slot, "/mnt/b");
    let err = check_slot_with(&slot, None, None, &table, &no_sys).unwrap_err();
    assert!(matches!(err, InstallError::SlotMounted { .. }), "{err}");
    // Bind-mounted over.
    let table = line(Path::new("/dev/vdz"), &slot.display().to_string());
    let err = check_slot_with(&slot, None, None, &table, &no_sys).unwrap_err();
    assert!(matches!(err, InstallError::SlotMounted { .. }), "{err}");
    // Behind a mounted loop device.
    std::fs::create_dir_all(sys.join("loop3/loop")).unwrap();
    std::fs::write(
        sys.join("loop3/loop/backing_file"),
        format!("{}\n", slot.display()),
    )
    .unwrap();
    let table = line(Path::new("/dev/loop3"), "/mnt/b");
    let err = check_slot_with(&slot, None, None, &table, &sys).unwrap_err();
    assert!(matches!(err, InstallError::SlotMounted { .. }), "{err}");
    // Another file's loop device and unrelated mounts do not refuse it.
    let other = tmp.path().join("c.img");
    std::fs::write(&other, b"fs").unwrap();
    check_slot_with(&other, None, None, &table, &sys).unwrap();
}

#[test]
fn the_hook_runs_once_before_the_first_byte_is_written() {
    let repo = repo_with_release();
    let slot = repo.path().join("b.img");
    std::fs::write(&slot, b"old image").unwrap();
    let seen = Rc::new(RefCell::new(Vec::new()));
    let mut hook = Recorder {
        slot: slot.clone(),
        seen: seen.clone(),
        refuse: false,
    };
    let opts = repo.options(repo.file_transport(), "rpi4", &slot);
    install(&opts, &mut hook, &NoProgress).unwrap();
    assert_eq!(*seen.borrow(), vec![Some(b"old image".to_vec())]);
    assert_eq!(std::fs::read(&slot).unwrap(), image(200_000, 31));
}

#[test]
fn a_hook_that_fails_stops_the_install_before_any_write() {
    let repo = repo_with_release();
    let slot = repo.path().join("b.img");
    std::fs::write(&slot, b"old image").unwrap();
    let seen = Rc::new(RefCell::new(Vec::new()));
    let mut hook = Recorder {
        slot: slot.clone(),
        seen: seen.clone(),
        refuse: true,
    };
    let opts = repo.options(repo.file_transport(), "rpi4", &slot);
    let err = install(&opts, &mut hook, &NoProgress).unwrap_err();
    assert!(matches!(err, InstallError::Deactivate { .. }), "{err}");
    assert_eq!(seen.borrow().len(), 1);
    assert_eq!(std::fs::read(&slot).unwrap(), b"old image");
}

#[test]
fn a_guard_refusal_happens_before_the_hook() {
    let repo = repo_with_release();
    let seed = repo.path().join("a.img");
    std::fs::write(&seed, b"running").unwrap();
    let seen = Rc::new(RefCell::new(Vec::new()));
    let mut hook = Recorder {
        slot: seed.clone(),
        seen: seen.clone(),
        refuse: false,
    };
    let mut opts = repo.options(repo.file_transport(), "rpi4", &seed);
    opts.seed = Some(seed.clone());
    install(&opts, &mut hook, &NoProgress).unwrap_err();
    assert!(seen.borrow().is_empty(), "the seed slot was deactivated");
}
