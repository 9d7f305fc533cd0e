//! Hostile or wrong inputs are refused with a message naming what was wrong, and a
//! refused build leaves nothing at --out: an unknown board, a dynamic skerryd, --fault
//! with a skerryd without the hooks, a missing kernel package or a directory in its
//! place, and extensions that escape the root or replace what the image owns.

mod image_support;

use std::path::{Path, PathBuf};

use image_support::{build_refused, fake_skerryd, need_build_tools, skerryctl};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A tar of one regular file named `name` (written by hand, so a name the tar crate
/// would refuse to write still gets in).
fn tar_with(path: &Path, name: &str, data: &[u8]) {
    let mut h = [0u8; 512];
    h[..name.len()].copy_from_slice(name.as_bytes());
    h[100..108].copy_from_slice(b"0000644\0");
    h[108..116].copy_from_slice(b"0000000\0");
    h[116..124].copy_from_slice(b"0000000\0");
    h[124..136].copy_from_slice(format!("{:011o}\0", data.len()).as_bytes());
    h[136..148].copy_from_slice(b"00000000000\0");
    h[156] = b'0';
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    let mut out = h.to_vec();
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512 + 1024, 0);
    std::fs::write(path, out).unwrap();
}

#[test]
fn an_unknown_board_is_named_with_the_shipped_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("disk.img");
    let o = skerryctl()
        .args([
            "image",
            "build",
            "--board",
            "qemu-arm9",
            "--version",
            "1.0.0",
            "--out",
            s(&out),
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(
        err.contains("no board named \"qemu-arm9\"") && err.contains("qemu-x86_64"),
        "{err}"
    );
    assert!(!out.exists());
}

#[test]
fn a_dynamic_skerryd_or_one_without_fault_hooks_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("disk.img");
    build_refused(&out, Path::new("/bin/true"), &[], "not static");
    build_refused(
        &out,
        Path::new("/bin/true"),
        &[],
        "build with scripts/build-static",
    );
    let skerryd = fake_skerryd(tmp.path());
    build_refused(&out, &skerryd, &["--fault", "hang-daemon"], "fault-hooks");
    let o = image_support::build(&out, &skerryd, &["--fault", "reboot-loop"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("unknown fault hook"));
}

#[test]
fn a_missing_kernel_package_or_a_directory_in_its_place_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("disk.img");
    let skerryd = fake_skerryd(tmp.path());
    let cache = tmp.path().join("kernels");
    std::fs::create_dir_all(&cache).unwrap();
    let build = |needle: &str| {
        let o = skerryctl()
            .env("SKERRY_KERNEL_CACHE", &cache)
            .args([
                "image",
                "build",
                "--board",
                "qemu-x86_64",
                "--version",
                "1.0.0",
                "--out",
                s(&out),
                "--skerryd",
                s(&skerryd),
            ])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(
            !o.status.success() && err.contains(needle),
            "expected {needle:?}: {err}"
        );
        assert!(!out.exists());
        err
    };
    let err = build("scripts/install-deps test");
    assert!(
        err.contains("apt-get download linux-image-6.1.0-48-amd64=6.1.172-1"),
        "{err}"
    );
    std::fs::create_dir(cache.join("linux-image-6.1.0-48-amd64_6.1.172-1_amd64.deb")).unwrap();
    build("is not a file");
}

#[test]
/// Through the command line; every other class of hostile layer is in
/// boards/image/tests/extension_layers.rs (each build here costs a kernel unpack).
fn extensions_may_not_escape_the_root_or_replace_what_the_image_owns() {
    need_build_tools();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("disk.img");
    let skerryd = fake_skerryd(tmp.path());
    let escape = tmp.path().join("escape.tar");
    tar_with(&escape, "usr/../../etc/cron.d/evil", b"* * * * * root id\n");
    build_refused(
        &out,
        &skerryd,
        &["--extension-layer", s(&escape)],
        "climbs out with '..'",
    );
    let dir: PathBuf = tmp.path().join("app");
    std::fs::create_dir_all(dir.join("sbin")).unwrap();
    std::fs::write(dir.join("sbin/skerryd"), b"#!/bin/sh\n").unwrap();
    build_refused(
        &out,
        &skerryd,
        &["--extension", s(&dir)],
        "/sbin/skerryd would replace /sbin/skerryd",
    );
}
