//! An EFI system partition in a disk image, built without loop devices or mounts: `sgdisk`
//! partitions a sparse file, `mkfs.vfat --offset` formats the partition in place, and
//! mtools (`mmd`, `mcopy -i IMAGE@@OFFSET`) put files in and read them back, also after
//! a guest wrote them.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::qemu::error::QemuError;
use crate::qemu::files::{need_tool, run_tool, sparse_file};

/// Where the ESP starts (sector 2048, 1 MiB), as GPT tools align it.
const ESP_START_SECTOR: u64 = 2048;
/// The ESP's size: large enough for FAT16 and a standalone GRUB.
const ESP_MIB: u64 = 32;
/// The whole disk: the ESP plus room for the GPT and its backup.
const DISK_MIB: u64 = ESP_MIB + 2;
/// Files larger than this are not read back (a grubenv is 1 KiB).
const MAX_READ_BACK: usize = 64 << 20;

/// A GPT disk image whose first partition is a FAT ESP.
#[derive(Debug, Clone)]
pub struct EspImage {
    path: PathBuf,
}

impl EspImage {
    /// Creates `path` with an empty ESP.
    pub fn create(path: &Path) -> Result<EspImage, QemuError> {
        for (tool, package) in [
            ("sgdisk", "gdisk"),
            ("mkfs.vfat", "dosfstools"),
            ("mcopy", "mtools"),
        ] {
            need_tool(tool, package)?;
        }
        sparse_file(path, DISK_MIB << 20)?;
        run_tool(
            Command::new("sgdisk")
                .args(["-o", "-n"])
                .arg(format!("1:{ESP_START_SECTOR}:+{ESP_MIB}M"))
                .args(["-t", "1:ef00", "-c", "1:ESP"])
                .arg(path),
        )?;
        run_tool(
            Command::new("mkfs.vfat")
                .args(["-n", "ESP", "--offset"])
                .arg(ESP_START_SECTOR.to_string())
                .arg(path)
                .arg((ESP_MIB * 1024).to_string()),
        )?;
        Ok(EspImage {
            path: path.to_owned(),
        })
    }

    /// The image file (attach it as a drive).
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn target(&self) -> String {
        format!("{}@@{}", self.path.display(), ESP_START_SECTOR * 512)
    }

    /// Copies `from` (a host file) to `to` (`/EFI/BOOT/BOOTX64.EFI`), creating folders.
    pub fn put(&self, from: &Path, to: &str) -> Result<(), QemuError> {
        let to = to.trim_start_matches('/');
        let mut dir = String::new();
        let parts: Vec<&str> = to.split('/').collect();
        for part in &parts[..parts.len().saturating_sub(1)] {
            dir.push('/');
            dir.push_str(part);
            // mmd fails on a folder that exists; -D s would skip, but only for files.
            let _ = run_tool(
                Command::new("mmd")
                    .arg("-i")
                    .arg(self.target())
                    .arg(format!("::{dir}")),
            );
        }
        run_tool(
            Command::new("mcopy")
                .args(["-o", "-i"])
                .arg(self.target())
                .arg(from)
                .arg(format!("::/{to}")),
        )
        .map(drop)
    }

    /// Reads the file `path` of the ESP (what the guest left there).
    pub fn read(&self, path: &str) -> Result<Vec<u8>, QemuError> {
        let bytes = run_tool(
            Command::new("mcopy")
                .arg("-i")
                .arg(self.target())
                .arg(format!("::/{}", path.trim_start_matches('/')))
                .arg("-"),
        )?;
        if bytes.len() > MAX_READ_BACK {
            return Err(QemuError::Tool {
                command: format!("mcopy ::{path}"),
                stderr: format!(
                    "{} bytes, more than the {MAX_READ_BACK} we read back",
                    bytes.len()
                ),
            });
        }
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_go_in_and_come_back_out() {
        let dir = tempfile::tempdir().unwrap();
        let esp = EspImage::create(&dir.path().join("disk.img")).unwrap();
        let file = dir.path().join("hello");
        std::fs::write(&file, b"grubenv stand-in").unwrap();
        esp.put(&file, "/EFI/BOOT/grubenv").unwrap();
        esp.put(&file, "/EFI/BOOT/again").unwrap();
        assert_eq!(esp.read("/EFI/BOOT/grubenv").unwrap(), b"grubenv stand-in");
        assert!(esp.read("/EFI/BOOT/missing").is_err());
    }
}
