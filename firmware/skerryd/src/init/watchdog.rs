//! Arming the board's watchdog in the initramfs: open the device (opening starts it),
//! set the board's timeout, feed once. The file is later closed without the magic
//! character, so the watchdog keeps counting across the switch to the slot and the
//! exec of the system stage, until the daemon's health gate feeds it.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use skerry_watchdog::linux::LinuxWatchdog;
use skerry_watchdog::Watchdog as _;

/// How long the device node may take to appear after its driver loaded.
const DEVICE_WAIT: Duration = Duration::from_secs(5);

/// An armed watchdog; dropping it closes the device without disarming it.
#[derive(Debug)]
pub struct Armed {
    watchdog: LinuxWatchdog,
    /// The device.
    pub device: PathBuf,
    /// The timeout the driver counts.
    pub timeout: Duration,
}

impl Armed {
    /// Feeds it (while PID 1 waits for a device, say).
    pub fn feed(&mut self) {
        let _ = self.watchdog.feed();
    }
}

/// Opens `device`, sets `timeout_secs`, feeds it.
pub fn arm(device: &Path, timeout_secs: u32) -> Result<Armed, String> {
    let started = Instant::now();
    while !device.exists() && started.elapsed() < DEVICE_WAIT {
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut watchdog = LinuxWatchdog::new(device);
    let timeout = watchdog
        .arm(Duration::from_secs(u64::from(timeout_secs)))
        .map_err(|e| format!("arming the watchdog {}: {e}", device.display()))?;
    watchdog
        .feed()
        .map_err(|e| format!("feeding the watchdog {}: {e}", device.display()))?;
    Ok(Armed {
        watchdog,
        device: device.to_owned(),
        timeout,
    })
}
