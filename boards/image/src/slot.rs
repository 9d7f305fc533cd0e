//! The slot tree, as docs/os-image.md lays it out: kernel, initramfs, static skerryd,
//! the board definition and the image's metadata, the factory config, placeholders and
//! mount points, the modules, and `mke2fs` with the libraries it needs (PID 1 formats
//! `/var` with it); and the initramfs that goes into it.

use std::path::{Path, PathBuf};

use crate::cpio::{Archive, Entry};
use crate::error::ImageError;
use crate::kernel::sha256_file;
use crate::tools::{run, LDD, MKE2FS};
use crate::tree::{walk, Tree};

/// Empty files PID 1 bind-mounts the rendered ones over.
pub const PLACEHOLDERS: [&str; 3] = ["etc/hostname", "etc/hosts", "etc/resolv.conf"];
/// Empty directories PID 1 mounts filesystems on.
pub const MOUNT_POINTS: [&str; 7] = ["proc", "sys", "dev", "run", "tmp", "var", "boot/efi"];
/// Where the fault hook word goes (test builds only).
pub const FAULT_FILE: &str = "etc/skerry/fault";

/// A host file copied into the slot, recorded in the image's metadata.
#[derive(Debug, Clone, serde::Serialize)]
pub struct HostFile {
    pub path: String,
    pub sha256: String,
}

/// Copies `/usr/sbin/mke2fs`, the libraries `ldd` lists for it and the loader, and
/// mke2fs' config, to the same paths in the slot.
pub fn mke2fs_and_libraries(tree: &Tree) -> Result<Vec<HostFile>, ImageError> {
    let mke2fs = MKE2FS.find()?;
    let listing = run(LDD.command()?.arg(&mke2fs))?;
    let mut paths: Vec<PathBuf> = vec![PathBuf::from("/usr/sbin/mke2fs")];
    for line in String::from_utf8_lossy(&listing).lines() {
        // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x…)" or "/lib64/ld-linux-x86-64.so.2 (0x…)"
        let path = line
            .split("=>")
            .last()
            .unwrap_or("")
            .split_whitespace()
            .next()
            .unwrap_or("");
        if path.starts_with('/') {
            paths.push(PathBuf::from(path));
        }
    }
    if paths.len() < 2 {
        return Err(ImageError::Input {
            what: "ldd /usr/sbin/mke2fs".into(),
            reason: "listed no libraries".into(),
        });
    }
    paths.push(PathBuf::from("/etc/mke2fs.conf"));
    let mut recorded = Vec::new();
    for path in paths {
        if !path.is_file() && path.ends_with("mke2fs.conf") {
            continue;
        }
        let text = path.to_string_lossy().into_owned();
        tree.copy(&text, &path, !text.ends_with(".conf"))?;
        recorded.push(HostFile {
            sha256: sha256_file(&path)?,
            path: text,
        });
    }
    Ok(recorded)
}

/// The base tree: everything but the initramfs and image.json.
#[derive(Debug)]
pub struct BaseInputs<'a> {
    pub vmlinuz: &'a Path,
    pub skerryd: &'a Path,
    pub board_toml: &'a str,
    pub config: Option<&'a Path>,
    pub fault: Option<&'a str>,
    /// The staged `lib/modules/RELEASE` directory, and RELEASE.
    pub modules: (&'a Path, &'a str),
}

pub fn base(tree: &Tree, inputs: &BaseInputs<'_>) -> Result<Vec<HostFile>, ImageError> {
    for dir in ["boot", "sbin", "etc/skerry", "usr/sbin"]
        .iter()
        .chain(MOUNT_POINTS.iter())
    {
        tree.dir(dir)?;
    }
    tree.copy("boot/vmlinuz", inputs.vmlinuz, false)?;
    tree.copy("sbin/skerryd", inputs.skerryd, true)?;
    tree.file("etc/skerry/board.toml", inputs.board_toml.as_bytes(), false)?;
    if let Some(config) = inputs.config {
        tree.copy("etc/skerry/config.yaml", config, false)?;
    }
    if let Some(word) = inputs.fault {
        tree.file(FAULT_FILE, format!("{word}\n").as_bytes(), false)?;
    }
    for p in PLACEHOLDERS {
        tree.file(p, b"", false)?;
    }
    let (modules, release) = inputs.modules;
    tree.copy_dir(&format!("lib/modules/{release}"), modules)?;
    mke2fs_and_libraries(tree)
}

/// The initramfs: `/init` (skerryd), `/dev/console`, the mount points PID 1 uses there,
/// the board definition, the fault word (test builds) and the modules.
pub fn initramfs(inputs: &BaseInputs<'_>, epoch: u64) -> Result<Vec<u8>, ImageError> {
    let mut a = Archive::default();
    let skerryd =
        std::fs::read(inputs.skerryd).map_err(ImageError::io("reading", inputs.skerryd))?;
    a.add(
        "init",
        Entry::File {
            data: skerryd,
            executable: true,
        },
    );
    a.add("dev/console", Entry::CharDevice { major: 5, minor: 1 });
    for dir in ["proc", "sys", "dev", "root", "tmp"] {
        a.add(dir, Entry::Dir);
    }
    a.add(
        "etc/skerry/board.toml",
        Entry::File {
            data: inputs.board_toml.as_bytes().to_vec(),
            executable: false,
        },
    );
    if let Some(word) = inputs.fault {
        a.add(
            FAULT_FILE,
            Entry::File {
                data: format!("{word}\n").into_bytes(),
                executable: false,
            },
        );
    }
    let (modules, release) = inputs.modules;
    let base = format!("lib/modules/{release}");
    a.add(&base, Entry::Dir);
    for (rel, is_dir) in walk(modules)? {
        let path = format!("{base}/{}", rel.display());
        if is_dir {
            a.add(&path, Entry::Dir);
        } else {
            let src = modules.join(&rel);
            let data = std::fs::read(&src).map_err(ImageError::io("reading", &src))?;
            a.add(
                &path,
                Entry::File {
                    data,
                    executable: false,
                },
            );
        }
    }
    let epoch = u32::try_from(epoch).map_err(|_| ImageError::Input {
        what: "the build epoch".into(),
        reason: format!("{epoch} does not fit the initramfs format's 32-bit times"),
    })?;
    Ok(a.to_bytes(epoch))
}
