//! `skerryctl boot set-device-args` on a GRUB environment: what it sets is read back by
//! `grub-editenv` (GRUB's own tool), the boot state beside it is kept, a word the boot
//! script would drop is refused with nothing written, and `--clear` removes them.

use std::path::Path;
use std::process::{Command, Output};

fn skerryctl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_skerryctl"))
        .args(args)
        .output()
        .unwrap()
}

fn grub_editenv_list(path: &Path) -> String {
    let out = Command::new("grub-editenv")
        .arg(path)
        .arg("list")
        .output()
        .expect("grub-editenv (Debian package grub-common) is needed");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn device_args_round_trip_through_grub_editenv() {
    let dir = tempfile::tempdir().unwrap();
    let env = dir.path().join("grubenv");
    let store = format!("grub:{}", env.display());
    assert!(skerryctl(&["boot", "init", "--store", &store])
        .status
        .success());
    let before = grub_editenv_list(&env);

    let args = "skerry.join=https://fleet.example.com/join?token=T1 skerry.logs=tcp://10.0.0.1:514";
    let out = skerryctl(&["boot", "set-device-args", "--store", &store, args]);
    assert!(out.status.success(), "{out:?}");
    let listed = grub_editenv_list(&env);
    assert!(
        listed.contains(&format!("SKERRY_DEVICE_ARGS={args}\n")),
        "{listed}"
    );
    for line in before.lines().filter(|l| l.starts_with("ORDER=")) {
        assert!(listed.contains(line), "boot state lost: {listed}");
    }

    let written = std::fs::read(&env).unwrap();
    for hostile in [
        "skerry.join=x init=/bin/sh",
        "init=/bin/sh",
        "skerry.join=\"a b\"",
    ] {
        let out = skerryctl(&["boot", "set-device-args", "--store", &store, hostile]);
        assert_eq!(out.status.code(), Some(1), "{hostile:?} taken: {out:?}");
        assert!(!out.stderr.is_empty());
        assert_eq!(std::fs::read(&env).unwrap(), written, "{hostile:?} wrote");
    }

    let out = skerryctl(&["boot", "set-device-args", "--store", &store, "--clear"]);
    assert!(out.status.success(), "{out:?}");
    assert!(!grub_editenv_list(&env).contains("SKERRY_DEVICE_ARGS"));
    let status = skerryctl(&["boot", "status", "--store", &store]);
    assert!(status.status.success(), "{status:?}");
}

#[test]
fn a_store_other_than_grub_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let env = dir.path().join("uboot.env");
    let store = format!("uboot:{},redundant", env.display());
    let out = skerryctl(&[
        "boot",
        "set-device-args",
        "--store",
        &store,
        "skerry.join=x",
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("GRUB environment"), "{stderr}");
}
