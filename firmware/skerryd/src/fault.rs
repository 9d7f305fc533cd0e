//! Test-only fault hooks (cargo feature `fault-hooks`; without it this module has no
//! code that reads anything, and [`configured`] is always `None`). The slot's
//! `/etc/skerry/fault` (or `skerry.fault=` on the kernel command line) holds one word:
//!
//! - `panic-initramfs`: after the watchdog is armed, a real kernel panic (sysrq `c`);
//!   `panic=10` reboots into the bootloader, which counts the attempt;
//! - `hang-initramfs`: after the watchdog is armed, PID 1 stops doing anything, so only
//!   the watchdog brings the machine back;
//! - `hang-daemon`: [`HANG_AFTER`] after the daemon is ready its async runtime is
//!   blocked: controllers (the watchdog heartbeat among them) and the API stop, the
//!   health gate withholds the feeds and the watchdog resets the machine.

use std::path::Path;
use std::time::Duration;

/// The fault file, relative to the slot's root.
pub const FAULT_FILE: &str = "etc/skerry/fault";
/// How long after ready `hang-daemon` hangs.
pub const HANG_AFTER: Duration = Duration::from_secs(5);

/// A fault to inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// A kernel panic in the initramfs, after arming the watchdog.
    PanicInitramfs,
    /// PID 1 hangs in the initramfs, after arming the watchdog.
    HangInitramfs,
    /// The daemon's runtime hangs a while after ready.
    HangDaemon,
}

impl Fault {
    /// Parses the one word.
    pub fn parse(word: &str) -> Option<Fault> {
        match word.trim() {
            "panic-initramfs" => Some(Fault::PanicInitramfs),
            "hang-initramfs" => Some(Fault::HangInitramfs),
            "hang-daemon" => Some(Fault::HangDaemon),
            _ => None,
        }
    }
}

/// Whether this build has the hooks.
pub const ENABLED: bool = cfg!(feature = "fault-hooks");

/// The fault configured under `root` (or by `cmdline_value`), in a build with the
/// hooks; always `None` without them.
#[cfg(feature = "fault-hooks")]
pub fn configured(root: &Path, cmdline_value: Option<&str>) -> Option<Fault> {
    if let Some(fault) = cmdline_value.and_then(Fault::parse) {
        return Some(fault);
    }
    let bytes = skerryd_core::layout::read_bounded(&root.join(FAULT_FILE), 64).ok()?;
    Fault::parse(&String::from_utf8_lossy(&bytes))
}

/// Without the `fault-hooks` feature nothing is read and no fault is injected.
#[cfg(not(feature = "fault-hooks"))]
pub fn configured(_root: &Path, _cmdline_value: Option<&str>) -> Option<Fault> {
    None
}

/// `hang-daemon`: after [`HANG_AFTER`], occupies every worker of the daemon's runtime
/// for good (the threads sleep inside tasks), as a deadlock would.
#[cfg(feature = "fault-hooks")]
pub fn hang_daemon_later(workers: usize) {
    tokio::spawn(async move {
        tokio::time::sleep(HANG_AFTER).await;
        tracing::warn!("fault hook hang-daemon: blocking the runtime now");
        for _ in 0..workers {
            tokio::spawn(async {
                loop {
                    std::thread::sleep(Duration::from_secs(3600));
                }
            });
        }
    });
}

/// Without the feature, nothing.
#[cfg(not(feature = "fault-hooks"))]
pub fn hang_daemon_later(_workers: usize) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words() {
        assert_eq!(Fault::parse("hang-daemon\n"), Some(Fault::HangDaemon));
        assert_eq!(Fault::parse("panic-initramfs"), Some(Fault::PanicInitramfs));
        assert_eq!(Fault::parse("hang-initramfs"), Some(Fault::HangInitramfs));
        assert_eq!(Fault::parse("reboot"), None);
    }

    #[test]
    fn read_only_with_the_feature() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("etc/skerry")).unwrap();
        std::fs::write(dir.path().join(FAULT_FILE), "hang-daemon\n").unwrap();
        let expected = if ENABLED {
            Some(Fault::HangDaemon)
        } else {
            None
        };
        assert_eq!(configured(dir.path(), None), expected);
        let expected = if ENABLED {
            Some(Fault::PanicInitramfs)
        } else {
            None
        };
        assert_eq!(configured(dir.path(), Some("panic-initramfs")), expected);
    }
}
