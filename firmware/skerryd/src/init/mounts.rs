//! What PID 1 mounts, as data ([`MountStep`] lists, one per stage), and carrying a list
//! out. The plans are pure so a test can read them; only [`apply`] touches the kernel.

use std::path::{Path, PathBuf};

use rustix::mount::MountFlags;

/// One mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountStep {
    /// Device or pseudo-filesystem name.
    pub source: String,
    /// Where (created if missing, when the parent is writable).
    pub target: PathBuf,
    /// Filesystem type; `None` for a bind mount.
    pub fstype: Option<&'static str>,
    /// Mount flags.
    pub flags: MountFlags,
    /// Filesystem options.
    pub data: String,
}

fn fs(
    source: &str,
    target: &str,
    fstype: &'static str,
    flags: MountFlags,
    data: &str,
) -> MountStep {
    MountStep {
        source: source.into(),
        target: target.into(),
        fstype: Some(fstype),
        flags,
        data: data.into(),
    }
}

const SAFE: MountFlags = MountFlags::NOSUID
    .union(MountFlags::NODEV)
    .union(MountFlags::NOEXEC);

/// The initramfs' first mounts: `/proc`, `/sys`, `/dev`.
pub fn early() -> Vec<MountStep> {
    vec![
        fs("proc", "/proc", "proc", SAFE, ""),
        fs("sysfs", "/sys", "sysfs", SAFE, ""),
        fs(
            "devtmpfs",
            "/dev",
            "devtmpfs",
            MountFlags::NOSUID,
            "mode=0755",
        ),
    ]
}

/// The slot's root, read-only and without replaying a journal (`noload`: a read-only
/// slot must not be written, not even by recovery), at `target`.
pub fn slot_root(device: &Path, target: &Path) -> MountStep {
    MountStep {
        source: device.display().to_string(),
        target: target.to_owned(),
        fstype: Some("ext4"),
        flags: MountFlags::RDONLY | MountFlags::NODEV,
        data: "noload".into(),
    }
}

/// The system stage's mounts on the slot's own empty mount points, before `/var`.
pub fn system() -> Vec<MountStep> {
    vec![
        fs("tmpfs", "/run", "tmpfs", SAFE, "mode=0755,size=20%"),
        fs(
            "tmpfs",
            "/tmp",
            "tmpfs",
            MountFlags::NOSUID | MountFlags::NODEV,
            "mode=1777,size=20%",
        ),
        fs(
            "devpts",
            "/dev/pts",
            "devpts",
            MountFlags::NOSUID | MountFlags::NOEXEC,
            "gid=5,mode=0620,ptmxmode=0666",
        ),
        fs("tmpfs", "/dev/shm", "tmpfs", SAFE, "mode=1777"),
    ]
}

/// The state partition at `/var`.
pub fn var(device: &Path) -> MountStep {
    MountStep {
        source: device.display().to_string(),
        target: "/var".into(),
        fstype: Some("ext4"),
        flags: MountFlags::NOSUID | MountFlags::NODEV,
        data: String::new(),
    }
}

/// The ESP at `/boot/efi`, FAT with the code pages the board's modules provide.
pub fn esp(device: &Path) -> MountStep {
    MountStep {
        source: device.display().to_string(),
        target: skerryd_core::device_board::ESP_MOUNT.into(),
        fstype: Some("vfat"),
        flags: SAFE,
        data: "umask=0077,codepage=437,iocharset=iso8859-1,flush".into(),
    }
}

/// The files the daemon renders, bind-mounted over their read-only places in `/etc`.
pub const MANAGED_FILES: [&str; 3] = ["hostname", "hosts", "resolv.conf"];

/// Bind mounts of `rendered/NAME` over `/etc/NAME` for each managed file.
pub fn managed_files(rendered: &Path) -> Vec<MountStep> {
    MANAGED_FILES
        .iter()
        .map(|name| MountStep {
            source: rendered.join(name).display().to_string(),
            target: Path::new("/etc").join(name),
            fstype: None,
            flags: MountFlags::empty(),
            data: String::new(),
        })
        .collect()
}

/// Why a mount failed.
#[derive(Debug, thiserror::Error)]
#[error("mounting {source_name} on {target} ({fstype}) failed")]
pub struct MountError {
    /// The source.
    pub source_name: String,
    /// The target.
    pub target: PathBuf,
    /// The type.
    pub fstype: String,
    /// Why.
    #[source]
    pub source: std::io::Error,
}

/// Mounts `step`, creating its target directory when missing (and possible).
pub fn apply(step: &MountStep) -> Result<(), MountError> {
    let fail = |source: std::io::Error| MountError {
        source_name: step.source.clone(),
        target: step.target.clone(),
        fstype: step.fstype.unwrap_or("bind").into(),
        source,
    };
    match step.fstype {
        Some(fstype) => {
            if !step.target.exists() {
                std::fs::create_dir_all(&step.target).map_err(fail)?;
            }
            let data = std::ffi::CString::new(step.data.as_str())
                .map_err(|_| fail(std::io::Error::other("a NUL in the mount options")))?;
            let data = (!step.data.is_empty()).then_some(data.as_c_str());
            rustix::mount::mount(step.source.as_str(), &step.target, fstype, step.flags, data)
                .map_err(|e| fail(e.into()))
        }
        None => rustix::mount::mount_bind(step.source.as_str(), &step.target)
            .map_err(|e| fail(e.into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn targets(steps: &[MountStep]) -> Vec<String> {
        steps
            .iter()
            .map(|s| s.target.display().to_string())
            .collect()
    }

    #[test]
    fn the_plans_mount_what_the_contract_lists_in_order() {
        assert_eq!(targets(&early()), ["/proc", "/sys", "/dev"]);
        assert_eq!(early()[2].fstype, Some("devtmpfs"));
        assert_eq!(targets(&system()), ["/run", "/tmp", "/dev/pts", "/dev/shm"]);
        assert!(system()
            .iter()
            .all(|s| s.flags.contains(MountFlags::NOSUID)));
        let root = slot_root(Path::new("/dev/vda2"), Path::new("/newroot"));
        assert!(root.flags.contains(MountFlags::RDONLY));
        assert_eq!((root.fstype, root.data.as_str()), (Some("ext4"), "noload"));
        assert_eq!(var(Path::new("/dev/vda4")).target, Path::new("/var"));
        assert!(!var(Path::new("/dev/vda4"))
            .flags
            .contains(MountFlags::RDONLY));
        assert_eq!(esp(Path::new("/dev/vda1")).fstype, Some("vfat"));
        assert_eq!(esp(Path::new("/dev/vda1")).target, Path::new("/boot/efi"));
        let managed = managed_files(Path::new("/var/skerry/etc"));
        assert_eq!(
            targets(&managed),
            ["/etc/hostname", "/etc/hosts", "/etc/resolv.conf"]
        );
        assert_eq!(managed[2].source, "/var/skerry/etc/resolv.conf");
        assert_eq!(managed[2].fstype, None);
    }
}
