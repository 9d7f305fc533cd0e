//! The host tools the build runs, each with the Debian package that provides it, so a
//! missing one is an error naming what to install.

use std::path::PathBuf;
use std::process::Command;

use crate::error::ImageError;

/// A host tool and its package.
#[derive(Debug, Clone, Copy)]
pub struct Tool {
    pub name: &'static str,
    pub package: &'static str,
}

pub const DPKG_DEB: Tool = Tool {
    name: "dpkg-deb",
    package: "dpkg",
};
pub const DEPMOD: Tool = Tool {
    name: "depmod",
    package: "kmod",
};
pub const MKE2FS: Tool = Tool {
    name: "mke2fs",
    package: "e2fsprogs",
};
pub const DEBUGFS: Tool = Tool {
    name: "debugfs",
    package: "e2fsprogs",
};
pub const SGDISK: Tool = Tool {
    name: "sgdisk",
    package: "gdisk",
};
pub const MKFS_VFAT: Tool = Tool {
    name: "mkfs.vfat",
    package: "dosfstools",
};
pub const MMD: Tool = Tool {
    name: "mmd",
    package: "mtools",
};
pub const MCOPY: Tool = Tool {
    name: "mcopy",
    package: "mtools",
};
pub const GRUB_MKIMAGE: Tool = Tool {
    name: "grub-mkimage",
    package: "grub-common",
};
pub const LDD: Tool = Tool {
    name: "ldd",
    package: "libc-bin",
};

/// Where GRUB's x86_64-efi modules are (package `grub-efi-amd64-bin`).
pub const GRUB_X86_64_EFI: &str = "/usr/lib/grub/x86_64-efi";

/// Every tool a build of a GRUB-EFI board runs.
pub const ALL: [Tool; 10] = [
    DPKG_DEB,
    DEPMOD,
    MKE2FS,
    DEBUGFS,
    SGDISK,
    MKFS_VFAT,
    MMD,
    MCOPY,
    GRUB_MKIMAGE,
    LDD,
];

impl Tool {
    /// The tool's path on `PATH` (and the sbin directories, which a non-root `PATH`
    /// often lacks), or an error naming its package.
    pub fn find(self) -> Result<PathBuf, ImageError> {
        let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).collect())
            .unwrap_or_default();
        dirs.extend(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from));
        dirs.into_iter()
            .map(|d| d.join(self.name))
            .find(|p| p.is_file())
            .ok_or_else(|| ImageError::MissingTool {
                tool: self.name.to_owned(),
                package: self.package.to_owned(),
            })
    }

    /// A command for the tool, in the C locale with a fixed time zone so its output and
    /// what it writes do not depend on the host's settings.
    pub fn command(self) -> Result<Command, ImageError> {
        let mut cmd = Command::new(self.find()?);
        cmd.env("LC_ALL", "C").env("TZ", "UTC");
        Ok(cmd)
    }
}

/// Runs `cmd`; fails with its stderr unless it exits 0; returns its stdout.
pub fn run(cmd: &mut Command) -> Result<Vec<u8>, ImageError> {
    let shown = format!("{cmd:?}");
    let out = cmd.output().map_err(|source| ImageError::Io {
        what: "starting",
        path: PathBuf::from(cmd.get_program()),
        source,
    })?;
    if out.status.success() {
        Ok(out.stdout)
    } else {
        let mut stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        if stderr.len() > 4000 {
            stderr.truncate(4000);
        }
        Err(ImageError::Tool {
            command: shown,
            stderr: stderr.trim().to_owned(),
        })
    }
}

/// Fails unless GRUB's x86_64-efi modules are installed.
pub fn need_grub_efi_modules() -> Result<(), ImageError> {
    if std::path::Path::new(GRUB_X86_64_EFI)
        .join("moddep.lst")
        .is_file()
    {
        Ok(())
    } else {
        Err(ImageError::MissingTool {
            tool: format!("GRUB's x86_64-efi modules ({GRUB_X86_64_EFI})"),
            package: "grub-efi-amd64-bin".into(),
        })
    }
}
