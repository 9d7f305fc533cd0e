//! Watchdogs behind one trait, and the health gate that feeds them.
//!
//! A watchdog resets the board unless it is fed within its timeout. Skerry feeds it only
//! while the machine is healthy, so a hung daemon, a stuck controller or a stalled disk
//! resets the box instead of leaving it up and useless.
//!
//! Layout:
//! - [`Watchdog`], [`Error`], [`ErrorKind`]: the trait every driver implements, in the
//!   `embedded-hal` style (the driver owns the device; errors expose a kind).
//! - [`linux`]: `/dev/watchdog` through the kernel's watchdog ioctls.
//! - [`pin`]: an external watchdog IC whose input is toggled through an `OutputPin`;
//!   [`gpio`] opens those pins on Linux (`linux-gpio` feature) or a Raspberry Pi (`rpi`).
//! - [`fake`]: a working model of a watchdog on a clock the caller controls, for tests.
//! - [`simulated`]: the simulated board's watchdog, a device outside the daemon's process
//!   on a Unix datagram socket ([`simulated::SocketWatchdog`] is the daemon's driver,
//!   [`simulated::SimulatedWatchdogDevice`] the board's side).
//! - [`clock`]: the clocks the fake and the gate read.
//! - [`gate`]: [`gate::Vitals`] (leases and health reports the callers renew) and
//!   [`gate::WatchdogGate`], the feed loop that feeds only while every vital is fresh.

pub mod clock;
pub mod fake;
pub mod gate;
pub mod gpio;
#[cfg(target_os = "linux")]
pub mod linux;
pub mod pin;
#[cfg(unix)]
pub mod simulated;

use std::time::Duration;

/// What went wrong, in words every driver shares, so callers can react without knowing
/// the driver (as `embedded_hal::digital::ErrorKind` does for pins).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// `feed` before `arm`.
    NotArmed,
    /// `arm` again with a different timeout while armed.
    AlreadyArmed,
    /// The device cannot count the timeout asked for.
    TimeoutOutOfRange,
    /// The watchdog already fired: the board is resetting, feeding is too late.
    Fired,
    /// The device is not there (no driver loaded, wrong path, pin not exported).
    DeviceMissing,
    /// The device is there but cannot do what was asked (not a watchdog, no way to stop it).
    Unsupported,
    /// The device failed while doing it.
    Device,
}

/// A driver's error exposes its [`ErrorKind`].
pub trait Error: std::error::Error + Send + Sync + 'static {
    /// The kind of failure, independent of the driver.
    fn kind(&self) -> ErrorKind;
}

/// A watchdog that resets the board unless fed within its timeout.
///
/// Dropping an armed watchdog without [`Watchdog::disarm`] leaves it running: a crash
/// must still end in a reset. Only an orderly `disarm` stops it.
pub trait Watchdog {
    /// The driver's error.
    type Error: Error;

    /// Starts the countdown with `timeout`, and returns the timeout the device actually
    /// counts (devices round to their resolution or have a fixed timeout). Arming again
    /// with the same timeout is a no-op; with another timeout it is
    /// [`ErrorKind::AlreadyArmed`].
    fn arm(&mut self, timeout: Duration) -> Result<Duration, Self::Error>;

    /// Restarts the countdown.
    fn feed(&mut self) -> Result<(), Self::Error>;

    /// The timeout the device counts while armed, `None` while disarmed.
    fn timeout(&self) -> Option<Duration>;

    /// Stops the watchdog in an orderly way (on Linux: the magic close) and gives up the
    /// device. Disarming a watchdog that was never armed does nothing.
    fn disarm(self) -> Result<(), Self::Error>;
}
