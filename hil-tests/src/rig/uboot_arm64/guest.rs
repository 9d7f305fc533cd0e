//! The busybox guests of the arm64 board: Debian's arm64 kernel and busybox-static,
//! pinned and downloaded by `scripts/deps/arm64-guest.sh`, and each release's initramfs,
//! whose `/init` (a busybox shell script) plays the release's part:
//!
//! - good: arms the watchdog (`i6300esb.ko`, QEMU's `-device i6300esb` on the `virt`
//!   machine's PCI bus), prints `SKERRY-WATCHDOG armed …` and
//!   `SKERRY-READY slot=S version=V`, and feeds the watchdog once a second;
//! - `panic-initramfs`: crashes the kernel (`echo c > /proc/sysrq-trigger`); `panic=1`
//!   resets the machine;
//! - `hang-initramfs`: arms the watchdog and stops, never feeding it.
//!
//! The slot name comes from the kernel command line (`skerry.slot=`, set by the boot
//! script from the slot U-Boot chose), the version from the release itself.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context as _};

use crate::qemu::files::{need_tool, run_tool};
use crate::rig::ReleaseProperty;

/// Where `scripts/deps/arm64-guest.sh` keeps the .debs (`SKERRY_ARM64_CACHE` overrides).
pub const DEFAULT_CACHE: &str = "/var/cache/skerry/arm64";
/// The pinned kernel package (keep in step with scripts/deps/arm64-guest.sh).
pub const KERNEL_DEB: &str = "linux-image-6.1.0-48-arm64_6.1.172-1_arm64.deb";
/// The kernel release inside it.
pub const KERNEL_RELEASE: &str = "6.1.0-48-arm64";
/// The pinned busybox package.
pub const BUSYBOX_DEB: &str = "busybox-static_1.35.0-4+deb12u1+b1_arm64.deb";
/// The watchdog's timeout in the guests, in seconds (`i6300esb heartbeat=`).
pub const WATCHDOG_SECS: u32 = 5;
/// The fault words a release of this board can carry.
pub const FAULTS: &[&str] = &["panic-initramfs", "hang-initramfs"];

/// The guest's programs, unpacked once per run.
#[derive(Debug, Clone)]
pub struct GuestFiles {
    /// The arm64 `Image` (Debian ships it uncompressed as `vmlinuz`).
    pub kernel: PathBuf,
    pub busybox: PathBuf,
    pub watchdog_module: PathBuf,
}

impl GuestFiles {
    /// Unpacks the pinned .debs from the cache into `dir`.
    pub fn unpack(dir: &Path) -> anyhow::Result<GuestFiles> {
        need_tool("dpkg-deb", "dpkg")?;
        let cache = std::env::var_os("SKERRY_ARM64_CACHE")
            .map_or_else(|| PathBuf::from(DEFAULT_CACHE), PathBuf::from);
        for deb in [KERNEL_DEB, BUSYBOX_DEB] {
            let path = cache.join(deb);
            if !path.is_file() {
                bail!(
                    "{} is missing: run scripts/deps/arm64-guest.sh (scripts/install-deps does)",
                    path.display()
                );
            }
            run_tool(Command::new("dpkg-deb").arg("-x").arg(&path).arg(dir))
                .with_context(|| format!("unpacking {}", path.display()))?;
        }
        let files = GuestFiles {
            kernel: dir.join(format!("boot/vmlinuz-{KERNEL_RELEASE}")),
            busybox: dir.join("bin/busybox"),
            watchdog_module: dir.join(format!(
                "lib/modules/{KERNEL_RELEASE}/kernel/drivers/watchdog/i6300esb.ko"
            )),
        };
        for path in [&files.kernel, &files.busybox, &files.watchdog_module] {
            if !path.is_file() {
                bail!("the unpacked arm64 packages hold no {}", path.display());
            }
        }
        Ok(files)
    }
}

/// The `/init` of a release of `version` that is `property`, or why the board cannot
/// make it.
pub fn init_script(
    version: &semver::Version,
    property: &ReleaseProperty,
) -> Result<String, String> {
    let head = "#!/bin/busybox sh\n\
        # A Skerry test guest: busybox only (no arm64 Rust target here).\n\
        /bin/busybox mount -t proc proc /proc\n\
        /bin/busybox mount -t devtmpfs dev /dev\n\
        slot=$(/bin/busybox sed -n 's/.*skerry\\.slot=\\([A-Za-z0-9_]*\\).*/\\1/p' /proc/cmdline)\n\
        echo \"SKERRY-INIT stage=initramfs slot=$slot version=VERSION\"\n"
        .replace("VERSION", &version.to_string());
    let arm = format!(
        "/bin/busybox insmod /lib/i6300esb.ko heartbeat={WATCHDOG_SECS} || echo \"SKERRY-FATAL cannot load i6300esb.ko\"\n\
         exec 3>/dev/watchdog\n\
         echo \"SKERRY-WATCHDOG armed device=/dev/watchdog timeout={WATCHDOG_SECS}\"\n"
    );
    let body = match property {
        ReleaseProperty::Good => format!(
            "{arm}echo \"SKERRY-READY slot=$slot version={version}\"\n\
             while :; do echo . >&3; /bin/busybox sleep 1; done\n"
        ),
        ReleaseProperty::Fault(word) if word == "panic-initramfs" => {
            "echo \"SKERRY-FATAL fault hook panic-initramfs: crashing the kernel\"\n\
             echo c > /proc/sysrq-trigger\n"
                .to_owned()
        }
        ReleaseProperty::Fault(word) if word == "hang-initramfs" => format!(
            "{arm}echo \"SKERRY-FATAL fault hook hang-initramfs: hanging with the watchdog armed\"\n\
             while :; do /bin/busybox sleep 3600; done\n"
        ),
        other => {
            return Err(format!(
                "make a busybox release that is {other} (faults: {})",
                FAULTS.join(", ")
            ))
        }
    };
    Ok(format!("{head}{body}"))
}

/// One entry of a newc archive.
enum Entry<'a> {
    Dir(&'a str),
    File(&'a str, u32, Vec<u8>),
    CharDevice(&'a str, u32, u32),
}

/// The initramfs (an uncompressed newc cpio archive) of a release.
pub fn initramfs(files: &GuestFiles, init: &str) -> anyhow::Result<Vec<u8>> {
    let read = |p: &Path| std::fs::read(p).with_context(|| format!("reading {}", p.display()));
    let entries = [
        Entry::Dir("bin"),
        Entry::Dir("dev"),
        Entry::CharDevice("dev/console", 5, 1),
        Entry::Dir("lib"),
        Entry::Dir("proc"),
        Entry::Dir("sys"),
        Entry::File("bin/busybox", 0o755, read(&files.busybox)?),
        Entry::File("lib/i6300esb.ko", 0o644, read(&files.watchdog_module)?),
        Entry::File("init", 0o755, init.as_bytes().to_vec()),
    ];
    let mut out = Vec::new();
    for (ino, entry) in entries.iter().enumerate() {
        let ino = ino as u32 + 1;
        match entry {
            Entry::Dir(name) => newc(&mut out, ino, name, 0o040755, 2, (0, 0), &[]),
            Entry::File(name, mode, data) => {
                newc(&mut out, ino, name, 0o100000 | mode, 1, (0, 0), data)
            }
            Entry::CharDevice(name, major, minor) => {
                newc(&mut out, ino, name, 0o020600, 1, (*major, *minor), &[])
            }
        }
    }
    newc(&mut out, 0, "TRAILER!!!", 0, 1, (0, 0), &[]);
    Ok(out)
}

fn pad4(out: &mut Vec<u8>) {
    while out.len() % 4 != 0 {
        out.push(0);
    }
}

fn newc(
    out: &mut Vec<u8>,
    ino: u32,
    name: &str,
    mode: u32,
    nlink: u32,
    rdev: (u32, u32),
    data: &[u8],
) {
    let fields = [
        ino,
        mode,
        0,
        0,
        nlink,
        0,
        data.len() as u32,
        0,
        0,
        rdev.0,
        rdev.1,
        name.len() as u32 + 1,
        0,
    ];
    out.extend_from_slice(b"070701");
    for f in fields {
        out.extend_from_slice(format!("{f:08x}").as_bytes());
    }
    out.extend_from_slice(name.as_bytes());
    out.push(0);
    pad4(out);
    out.extend_from_slice(data);
    pad4(out);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_release_kind_has_its_init_and_the_others_are_refused() {
        let v = semver::Version::new(1, 1, 0);
        let good = init_script(&v, &ReleaseProperty::Good).unwrap();
        assert!(
            good.contains("SKERRY-READY slot=$slot version=1.1.0"),
            "{good}"
        );
        assert!(
            good.contains("echo . >&3"),
            "a good guest feeds the watchdog"
        );
        let panic = init_script(&v, &ReleaseProperty::Fault("panic-initramfs".into())).unwrap();
        assert!(panic.contains("/proc/sysrq-trigger") && !panic.contains("SKERRY-READY"));
        let hang = init_script(&v, &ReleaseProperty::Fault("hang-initramfs".into())).unwrap();
        assert!(hang.contains("exec 3>/dev/watchdog") && !hang.contains(">&3"));
        for other in [
            ReleaseProperty::BadSignature,
            ReleaseProperty::FailingHealthCheck,
            ReleaseProperty::Fault("hang-daemon".into()),
        ] {
            assert!(init_script(&v, &other).is_err(), "{other}");
        }
    }

    #[test]
    fn a_newc_entry_is_padded_to_four_bytes() {
        let mut out = Vec::new();
        newc(&mut out, 1, "init", 0o100755, 1, (0, 0), b"abc");
        assert_eq!(&out[..6], b"070701");
        // 110-byte header + "init\0" padded to 116, + 3 data bytes padded to 120.
        assert_eq!(out.len(), 120);
        assert_eq!(&out[6..14], b"00000001");
        assert_eq!(&out[54..62], b"00000003", "file size");
    }
}
