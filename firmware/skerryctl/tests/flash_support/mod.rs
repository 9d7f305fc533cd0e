//! Shared by the `flash_*` tests: sparse test images, running `skerryctl flash`, and
//! guards for the loop devices and mounts some tests set up (undone on drop).

#![allow(dead_code)]

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const MIB: u64 = 1 << 20;

/// Writes a sparse image of `len` bytes to `path`: a hole first, then random-looking
/// data with a 2 MiB zero run written inside it, another hole, and data ending exactly
/// at the last byte. Returns the image's bytes.
pub fn sparse_image(path: &Path, len: u64) -> Vec<u8> {
    assert!(len >= 16 * MIB);
    let file = File::create(path).unwrap();
    file.set_len(len).unwrap();
    let mut bytes = vec![0u8; len as usize];
    let mut put = |at: u64, data: &[u8]| {
        file.write_all_at(data, at).unwrap();
        bytes[at as usize..at as usize + data.len()].copy_from_slice(data);
    };
    let noise = noise(5 * MIB as usize, 7);
    put(2 * MIB, &noise);
    put(3 * MIB, &vec![0; 2 * MIB as usize]);
    put(len - 3 * MIB - 7, &noise[..3 * MIB as usize + 7]);
    bytes
}

/// Bytes that are never a run of zeros (an xorshift stream, seeded).
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x as u8) | 1
        })
        .collect()
}

/// `skerryctl flash ARGS`, run to completion.
pub fn flash(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_skerryctl"))
        .arg("flash")
        .args(args)
        .output()
        .expect("skerryctl runs")
}

/// `skerryctl --output json flash ARGS`, required to succeed; its JSON summary.
pub fn flash_json(args: &[&str]) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_skerryctl"))
        .args(["--output", "json", "flash"])
        .args(args)
        .output()
        .expect("skerryctl runs");
    assert!(out.status.success(), "flash {args:?}: {}", stderr(&out));
    assert_eq!(stderr(&out), "", "nothing on stderr in json mode");
    serde_json::from_slice(&out.stdout).expect("one JSON document on stdout")
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Requires a refusal: exit code 2, a message naming `words`, nothing on stdout.
pub fn assert_refused(out: &Output, words: &str) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(2), "exit code; stderr: {err}");
    assert!(err.contains("refusing to flash"), "{err}");
    assert!(err.contains(words), "expected {words:?} in: {err}");
    assert!(out.stdout.is_empty());
}

pub fn run(cmd: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .map_err(|e| format!("{cmd}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(format!("{cmd} {args:?}: {}", stderr(&out)))
    }
}

/// A loop device over a file, detached on drop.
pub struct LoopDevice {
    pub path: PathBuf,
}

impl LoopDevice {
    /// Attaches `file` (with a partition scan when `partitions`); `Err` says why a loop
    /// device cannot be had here (the test then fails, saying why).
    pub fn attach(file: &Path, partitions: bool) -> Result<Self, String> {
        let file = file.to_str().unwrap();
        let mut args = vec!["--find", "--show"];
        if partitions {
            args.push("--partscan");
        }
        args.push(file);
        let path = run("losetup", &args)?;
        let dev = LoopDevice { path: path.into() };
        if partitions {
            // Without udev the partition nodes may be missing; partx adds them.
            let _ = run("partx", &["--add", dev.path.to_str().unwrap()]);
        }
        Ok(dev)
    }
}

impl Drop for LoopDevice {
    fn drop(&mut self) {
        let _ = run("losetup", &["--detach", self.path.to_str().unwrap()]);
    }
}

/// A mount, unmounted on drop.
pub struct Mounted {
    pub point: PathBuf,
}

impl Mounted {
    pub fn new(args: &[&str], point: &Path) -> Result<Self, String> {
        let mut all: Vec<&str> = args.to_vec();
        all.push(point.to_str().unwrap());
        run("mount", &all)?;
        Ok(Mounted {
            point: point.into(),
        })
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = run("umount", &[self.point.to_str().unwrap()]);
    }
}

/// A test that cannot set up its loop device or mount fails, naming why: a test that
/// passes without doing its part guards nothing. (These run as root, with `losetup`
/// and `mount` from util-linux/mount, on a kernel with loop devices.)
pub fn cannot_run(test: &str, why: &str) {
    panic!("{test} could not run here: {why} (it needs root, loop devices, and losetup/mount from the Debian packages util-linux and mount)");
}
