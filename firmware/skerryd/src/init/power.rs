//! How PID 1 ends: what the daemon left in `/run/power-request` decides between a
//! reboot and a power-off; then every other process is stopped, the disks are synced,
//! `/var` and the ESP unmounted, a `SKERRY-POWER` line written and `reboot(2)` called.
//! Anything unexpected (no request, a garbage one, a fatal error) is a reboot, so the
//! bootloader's attempt counting and the watchdog stay in charge.

use std::path::Path;
use std::time::Duration;

/// The file the daemon writes its request into.
pub const POWER_REQUEST: &str = "/run/power-request";
/// Mounts taken down before `reboot(2)`, innermost first.
pub const UNMOUNT: [&str; 2] = ["/boot/efi", "/var"];

/// What `reboot(2)` is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PowerAction {
    /// Restart the machine.
    Reboot,
    /// Power it off.
    PowerOff,
}

impl PowerAction {
    /// The word on the `SKERRY-POWER` line.
    pub fn as_str(self) -> &'static str {
        match self {
            PowerAction::Reboot => "reboot",
            PowerAction::PowerOff => "shutdown",
        }
    }
}

/// What to do once the daemon exited, and the reason for the console.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The action.
    pub action: PowerAction,
    /// Why (`request`, or what went wrong).
    pub reason: String,
    /// Whether the end is a failure (a `SKERRY-FATAL` line comes first).
    pub fatal: bool,
}

/// Maps the content of `/run/power-request` (`None`: no file) and how the daemon ended
/// to what PID 1 does. `reboot tryboot` is a plain reboot here: the one-shot trial boot
/// is the Raspberry Pi firmware's, and on x86 GRUB's counter picks the slot.
pub fn decide(request: Option<&str>, daemon: &str) -> Decision {
    let reboot = |reason: String, fatal| Decision {
        action: PowerAction::Reboot,
        reason,
        fatal,
    };
    match request.map(str::trim) {
        Some("reboot") => reboot("request".into(), false),
        Some("reboot tryboot") => reboot("request-tryboot".into(), false),
        Some("shutdown") => Decision {
            action: PowerAction::PowerOff,
            reason: "request".into(),
            fatal: false,
        },
        Some(other) => reboot(
            format!(
                "the daemon {daemon} and left an unknown power request {:?}",
                other.chars().take(40).collect::<String>()
            ),
            true,
        ),
        None => reboot(format!("the daemon {daemon} without a power request"), true),
    }
}

/// Reads the request file (bounded); `None` when it is missing or unreadable.
pub fn read_request(path: &Path) -> Option<String> {
    let bytes = skerryd_core::layout::read_bounded(path, 256).ok()?;
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

/// Stops every other process: SIGTERM, up to `grace` for them to go, then SIGKILL.
fn stop_everyone(grace: Duration) {
    use rustix::process::{kill_process, Pid, Signal};
    let others = || -> Vec<Pid> {
        let Ok(dir) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
            .filter(|pid| *pid > 1 && *pid != std::process::id() as i32)
            .filter_map(Pid::from_raw)
            .collect()
    };
    for pid in others() {
        let _ = kill_process(pid, Signal::TERM);
    }
    let started = std::time::Instant::now();
    while started.elapsed() < grace {
        super::reaper::reap_any();
        // Kernel threads are listed too but ignore signals; stop waiting on them by
        // looking only at processes with a command line.
        if others().iter().all(|pid| {
            std::fs::read(format!("/proc/{}/cmdline", pid.as_raw_nonzero()))
                .map_or(true, |c| c.is_empty())
        }) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    for pid in others() {
        let _ = kill_process(pid, Signal::KILL);
    }
    super::reaper::reap_any();
}

/// Ends the machine: stop the rest, sync, unmount, the console line, `reboot(2)`.
/// Never returns (if `reboot(2)` fails, PID 1 waits for the watchdog).
pub fn finish(action: PowerAction, reason: &str) -> ! {
    stop_everyone(Duration::from_secs(5));
    rustix::fs::sync();
    for target in UNMOUNT {
        if rustix::mount::unmount(target, rustix::mount::UnmountFlags::empty()).is_err() {
            // Busy or not mounted: at least make it clean on disk.
            let _ = rustix::mount::mount_remount(target, rustix::mount::MountFlags::RDONLY, "");
        }
    }
    rustix::fs::sync();
    super::console::line(&format!(
        "SKERRY-POWER {} reason={}",
        action.as_str(),
        reason.replace(char::is_whitespace, "-")
    ));
    let command = match action {
        PowerAction::Reboot => rustix::system::RebootCommand::Restart,
        PowerAction::PowerOff => rustix::system::RebootCommand::PowerOff,
    };
    if let Err(e) = rustix::system::reboot(command) {
        super::console::line(&super::console::fatal_line(&format!(
            "reboot(2) failed ({e}); waiting for the watchdog"
        )));
    }
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_map_to_actions_and_anything_else_reboots_as_fatal() {
        let d = decide(Some("reboot"), "exited with 0");
        assert_eq!(
            (d.action, d.fatal, d.reason.as_str()),
            (PowerAction::Reboot, false, "request")
        );
        let d = decide(Some("reboot tryboot\n"), "exited with 0");
        assert_eq!((d.action, d.fatal), (PowerAction::Reboot, false));
        let d = decide(Some("shutdown"), "exited with 0");
        assert_eq!((d.action, d.fatal), (PowerAction::PowerOff, false));
        assert_eq!(d.action.as_str(), "shutdown");
        let d = decide(None, "was killed by signal 9");
        assert_eq!((d.action, d.fatal), (PowerAction::Reboot, true));
        assert!(
            d.reason.contains("signal 9") && d.reason.contains("without a power request"),
            "{}",
            d.reason
        );
        let d = decide(Some("halt now"), "exited with 0");
        assert_eq!((d.action, d.fatal), (PowerAction::Reboot, true));
        assert!(d.reason.contains("\"halt now\""), "{}", d.reason);
    }

    #[test]
    fn the_request_file_is_read_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("power-request");
        assert_eq!(read_request(&path), None);
        std::fs::write(&path, "shutdown").unwrap();
        assert_eq!(read_request(&path).as_deref(), Some("shutdown"));
        std::fs::write(&path, "x".repeat(1000)).unwrap();
        assert_eq!(read_request(&path), None);
    }
}
