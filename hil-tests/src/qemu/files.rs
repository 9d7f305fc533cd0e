//! The files a machine boots from: firmware shipped by Debian packages, sparse flash
//! images, a private copy of OVMF's variable store, and the host tools that build them
//! (a missing one is an error naming the package to install, never a silent pass).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::qemu::error::QemuError;

/// Debian's U-Boot for QEMU's arm64 `virt` machine (package `u-boot-qemu`).
pub const UBOOT_QEMU_ARM64: &str = "/usr/lib/u-boot/qemu_arm64/u-boot.bin";
/// OVMF's code, 4 MiB layout (package `ovmf`), attached read-only.
pub const OVMF_CODE_4M: &str = "/usr/share/OVMF/OVMF_CODE_4M.fd";
/// OVMF's empty variable store; each machine gets its own copy.
pub const OVMF_VARS_4M: &str = "/usr/share/OVMF/OVMF_VARS_4M.fd";
/// The size of each flash bank of QEMU's arm64 `virt` machine.
pub const VIRT_FLASH_BANK: u64 = 64 << 20;

/// Fails unless `tool` is on `PATH`, naming `package`.
pub fn need_tool(tool: &str, package: &str) -> Result<(), QemuError> {
    let found = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(tool).is_file()))
        .unwrap_or(false);
    if found {
        Ok(())
    } else {
        Err(QemuError::MissingTool {
            tool: tool.to_owned(),
            package: package.to_owned(),
        })
    }
}

/// Fails unless `path` exists, naming `package`.
pub fn need_file(path: &str, package: &str) -> Result<PathBuf, QemuError> {
    let path = PathBuf::from(path);
    if path.is_file() {
        Ok(path)
    } else {
        Err(QemuError::MissingFile {
            path,
            package: package.to_owned(),
        })
    }
}

/// Creates (or truncates) `path` as a sparse file of `size` bytes.
pub fn sparse_file(path: &Path, size: u64) -> Result<(), QemuError> {
    let io = |source| QemuError::Io {
        what: "creating a sparse image",
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::create(path).map_err(io)?;
    file.set_len(size).map_err(io)
}

/// A writable copy of OVMF's variable store in `dir`.
pub fn ovmf_vars_copy(dir: &Path) -> Result<PathBuf, QemuError> {
    let source = need_file(OVMF_VARS_4M, "ovmf")?;
    let copy = dir.join("OVMF_VARS_4M.fd");
    std::fs::copy(&source, &copy).map_err(|source| QemuError::Io {
        what: "copying OVMF's variable store",
        path: copy.clone(),
        source,
    })?;
    Ok(copy)
}

/// Runs `command` (a host tool), failing with its stderr if it fails; returns stdout.
pub fn run_tool(command: &mut Command) -> Result<Vec<u8>, QemuError> {
    let shown = format!("{command:?}");
    let out = command.output().map_err(|source| QemuError::Spawn {
        program: shown.clone(),
        source,
    })?;
    if out.status.success() {
        Ok(out.stdout)
    } else {
        Err(QemuError::Tool {
            command: shown,
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_tool_names_its_package() {
        let err = need_tool("skerry-no-such-tool", "skerry-pkg").unwrap_err();
        assert!(err.to_string().contains("skerry-pkg"), "{err}");
        need_tool("sh", "dash").unwrap();
    }

    #[test]
    fn sparse_images_have_their_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("flash1.img");
        sparse_file(&path, VIRT_FLASH_BANK).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), VIRT_FLASH_BANK);
    }

    #[test]
    fn a_failing_tool_reports_its_stderr() {
        let err = run_tool(Command::new("sh").args(["-c", "echo broken >&2; exit 3"])).unwrap_err();
        assert!(err.to_string().contains("broken"), "{err}");
    }
}
