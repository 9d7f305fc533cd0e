//! What the `image_*` tests share: a stand-in static skerryd compiled from a few lines of
//! Rust (so the tests need no 10-minute static release build), `skerryctl image build`
//! runs, and the host tools with the package each comes from.

#![allow(dead_code, reason = "each test file uses part of this")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The stand-in PID 1: prints a marker line and sleeps (it never exits, as PID 1 must not).
pub const MARKER: &str = "SKERRY-TEST-INIT running";

/// A static binary built from `source` with `rustc -C target-feature=+crt-static`.
pub fn static_binary(dir: &Path, name: &str, source: &str) -> PathBuf {
    let src = dir.join(format!("{name}.rs"));
    std::fs::write(&src, source).unwrap();
    let out = dir.join(name);
    let status = Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()))
        .args(["-O", "-C", "target-feature=+crt-static", "-o"])
        .arg(&out)
        .arg(&src)
        .status()
        .expect("rustc runs");
    assert!(status.success(), "rustc {name}.rs");
    out
}

/// The stand-in skerryd: prints [`MARKER`], answers `--version` without fault hooks.
pub fn fake_skerryd(dir: &Path) -> PathBuf {
    stand_in(dir, "skerryd", "skerryd 0.0.0-test")
}

/// A stand-in whose `--version` lists `fault-hooks`, as a test build of skerryd's does.
pub fn fake_skerryd_with_fault_hooks(dir: &Path) -> PathBuf {
    stand_in(
        dir,
        "skerryd-fault-hooks",
        "skerryd 0.0.0-test (features: fault-hooks)",
    )
}

fn stand_in(dir: &Path, name: &str, version: &str) -> PathBuf {
    static_binary(
        dir,
        name,
        &format!(
            "fn main() {{\n\
             if std::env::args().any(|a| a == \"--version\") {{ println!(\"{version}\"); return; }}\n\
             println!(\"{MARKER} pid={{}}\", std::process::id());\n\
             loop {{ std::thread::sleep(std::time::Duration::from_secs(3600)); }}\n\
             }}\n"
        ),
    )
}

pub fn skerryctl() -> Command {
    Command::new(env!("CARGO_BIN_EXE_skerryctl"))
}

/// Fails naming the package unless `tool` is installed (on PATH or in an sbin).
pub fn need_tool(tool: &str, package: &str) {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.extend(["/usr/sbin", "/sbin"].map(PathBuf::from));
    assert!(
        dirs.iter().any(|d| d.join(tool).is_file()),
        "{tool} is not installed: install the Debian package {package} (scripts/install-deps test)"
    );
}

/// Every tool an image build and its read-back need.
pub fn need_build_tools() {
    for (tool, package) in [
        ("dpkg-deb", "dpkg"),
        ("depmod", "kmod"),
        ("mke2fs", "e2fsprogs"),
        ("debugfs", "e2fsprogs"),
        ("sgdisk", "gdisk"),
        ("mkfs.vfat", "dosfstools"),
        ("mcopy", "mtools"),
        ("grub-mkimage", "grub-common"),
        ("grub-editenv", "grub-common"),
    ] {
        need_tool(tool, package);
    }
    assert!(
        Path::new("/usr/lib/grub/x86_64-efi/moddep.lst").is_file(),
        "GRUB's x86_64-efi modules are missing: install the Debian package grub-efi-amd64-bin"
    );
}

/// `skerryctl image build --board qemu-x86_64 --version 1.0.0 --out OUT --skerryd S` plus `extra`.
pub fn build(out: &Path, skerryd: &Path, extra: &[&str]) -> Output {
    skerryctl()
        .args([
            "image",
            "build",
            "--board",
            "qemu-x86_64",
            "--version",
            "1.0.0",
            "--out",
        ])
        .arg(out)
        .arg("--skerryd")
        .arg(skerryd)
        .args(extra)
        .output()
        .unwrap()
}

/// Like [`build`], failing the test with skerryctl's stderr unless it succeeds.
pub fn build_ok(out: &Path, skerryd: &Path, extra: &[&str]) -> String {
    let o = build(out, skerryd, extra);
    assert!(
        o.status.success(),
        "image build failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

/// Like [`build`], expecting a refusal whose message contains `needle`; nothing may be
/// left at `out`.
pub fn build_refused(out: &Path, skerryd: &Path, extra: &[&str], needle: &str) -> String {
    let o = build(out, skerryd, extra);
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(!o.status.success(), "expected a refusal ({needle})");
    assert!(stderr.contains(needle), "expected {needle:?} in: {stderr}");
    assert!(!out.exists(), "a refused build left {}", out.display());
    stderr
}

/// Runs a host tool, failing the test with its stderr; returns stdout.
pub fn tool(cmd: &mut Command) -> String {
    let o = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        o.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}
