//! `/dev/watchdog`: the kernel's watchdog device.
//!
//! Opening the device starts the countdown, so [`LinuxWatchdog::new`] only names it and
//! [`Watchdog::arm`] opens it, sets the timeout (`WDIOC_SETTIMEOUT`) and reads back the
//! one the driver counts (`WDIOC_GETTIMEOUT`). A feed is `WDIOC_KEEPALIVE`. Only
//! [`Watchdog::disarm`] writes the magic `V` before closing; a crash closes the device
//! without it and the kernel lets the watchdog reset the board. (A kernel built with
//! `CONFIG_WATCHDOG_NOWAYOUT` ignores the magic close: the board then resets even after an
//! orderly disarm unless it reboots first.)

mod ioctl;

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rustix::io::Errno;

use crate::{Error, ErrorKind, Watchdog};

/// The longest timeout we ask of a device.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(3600);

/// The usual device path.
pub const DEFAULT_DEVICE: &str = "/dev/watchdog";

/// A failure of `/dev/watchdog`.
#[derive(Debug, thiserror::Error)]
pub enum LinuxWatchdogError {
    /// The device could not be opened.
    #[error("cannot open watchdog device {path}: is its driver loaded (i6300esb, softdog, bcm2835_wdt, ...) and the device free?")]
    Open {
        /// Device path.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The driver refused the timeout (or the path is not a watchdog).
    #[error("watchdog device {path} refused a {seconds} s timeout (WDIOC_SETTIMEOUT)")]
    SetTimeout {
        /// Device path.
        path: PathBuf,
        /// Seconds asked for.
        seconds: u64,
        /// The OS error.
        source: io::Error,
    },
    /// The driver did not say which timeout it counts.
    #[error("watchdog device {path} did not report its timeout (WDIOC_GETTIMEOUT)")]
    GetTimeout {
        /// Device path.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The driver reported a timeout that makes no sense.
    #[error("watchdog device {path} reports a timeout of {seconds} s")]
    BadTimeout {
        /// Device path.
        path: PathBuf,
        /// What it reported.
        seconds: i32,
    },
    /// A feed failed.
    #[error("feeding watchdog device {path} failed (WDIOC_KEEPALIVE)")]
    Keepalive {
        /// Device path.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The magic close could not be written: the watchdog keeps running.
    #[error("writing the magic close to watchdog device {path} failed: it keeps counting")]
    MagicClose {
        /// Device path.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// Fed before it was armed.
    #[error("watchdog device {path} fed before it was armed")]
    NotArmed {
        /// Device path.
        path: PathBuf,
    },
    /// Armed again with another timeout.
    #[error("watchdog device {path} is armed with {current} s; re-arming with {requested} s was refused")]
    AlreadyArmed {
        /// Device path.
        path: PathBuf,
        /// Seconds it was armed with.
        current: u64,
        /// Seconds asked for.
        requested: u64,
    },
    /// A timeout we do not ask of any device.
    #[error("a watchdog timeout of {requested:?} for {path} is outside 1 s..={max:?}")]
    TimeoutOutOfRange {
        /// Device path.
        path: PathBuf,
        /// Timeout asked for.
        requested: Duration,
        /// [`MAX_TIMEOUT`].
        max: Duration,
    },
}

/// The kind of an OS error from the device.
fn errno_kind(error: &io::Error) -> ErrorKind {
    let errno = error.raw_os_error().map(Errno::from_raw_os_error);
    match errno {
        Some(Errno::NOENT | Errno::NODEV | Errno::NXIO) => ErrorKind::DeviceMissing,
        Some(Errno::NOTTY | Errno::OPNOTSUPP) => ErrorKind::Unsupported,
        _ => ErrorKind::Device,
    }
}

impl Error for LinuxWatchdogError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Open { source, .. }
            | Self::GetTimeout { source, .. }
            | Self::Keepalive { source, .. }
            | Self::MagicClose { source, .. } => errno_kind(source),
            Self::SetTimeout { source, .. } => {
                match source.raw_os_error().map(Errno::from_raw_os_error) {
                    Some(Errno::INVAL) => ErrorKind::TimeoutOutOfRange,
                    _ => errno_kind(source),
                }
            }
            Self::BadTimeout { .. } => ErrorKind::Device,
            Self::NotArmed { .. } => ErrorKind::NotArmed,
            Self::AlreadyArmed { .. } => ErrorKind::AlreadyArmed,
            Self::TimeoutOutOfRange { .. } => ErrorKind::TimeoutOutOfRange,
        }
    }
}

#[derive(Debug)]
struct Armed {
    device: File,
    requested: u64,
    actual: Duration,
}

/// The kernel watchdog at a device path.
#[derive(Debug)]
pub struct LinuxWatchdog {
    path: PathBuf,
    armed: Option<Armed>,
}

/// `timeout` in whole seconds, rounded up (the kernel counts seconds).
fn whole_seconds(timeout: Duration) -> u64 {
    timeout.as_secs() + u64::from(timeout.subsec_nanos() > 0)
}

impl LinuxWatchdog {
    /// The watchdog at `path`, not opened yet (opening starts the countdown).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            armed: None,
        }
    }

    /// The device path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn open(&self, seconds: u64) -> Result<Armed, LinuxWatchdogError> {
        let path = || self.path.clone();
        let mut device = OpenOptions::new()
            .write(true)
            .open(&self.path)
            .map_err(|source| LinuxWatchdogError::Open {
                path: path(),
                source,
            })?;
        // From here the device counts with its default timeout: on any failure, stop it
        // with the magic close rather than leave a watchdog nobody feeds.
        let configured = i32::try_from(seconds)
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
            .and_then(|s| ioctl::set_timeout(device.as_fd(), s))
            .map_err(|source| LinuxWatchdogError::SetTimeout {
                path: path(),
                seconds,
                source,
            })
            .and_then(|_| {
                ioctl::get_timeout(device.as_fd()).map_err(|source| {
                    LinuxWatchdogError::GetTimeout {
                        path: path(),
                        source,
                    }
                })
            })
            .and_then(|actual| match u64::try_from(actual) {
                Ok(secs) if secs > 0 => Ok(Duration::from_secs(secs)),
                _ => Err(LinuxWatchdogError::BadTimeout {
                    path: path(),
                    seconds: actual,
                }),
            });
        match configured {
            Ok(actual) => Ok(Armed {
                device,
                requested: seconds,
                actual,
            }),
            Err(error) => {
                if let Err(close) = device.write_all(b"V") {
                    tracing::error!(path = %self.path.display(), %close, "magic close after a failed arm");
                }
                Err(error)
            }
        }
    }
}

impl Watchdog for LinuxWatchdog {
    type Error = LinuxWatchdogError;

    fn arm(&mut self, timeout: Duration) -> Result<Duration, LinuxWatchdogError> {
        if timeout < Duration::from_secs(1) || timeout > MAX_TIMEOUT {
            return Err(LinuxWatchdogError::TimeoutOutOfRange {
                path: self.path.clone(),
                requested: timeout,
                max: MAX_TIMEOUT,
            });
        }
        let requested = whole_seconds(timeout);
        match &self.armed {
            Some(armed) if armed.requested == requested => Ok(armed.actual),
            Some(armed) => Err(LinuxWatchdogError::AlreadyArmed {
                path: self.path.clone(),
                current: armed.requested,
                requested,
            }),
            None => {
                let armed = self.open(requested)?;
                let actual = armed.actual;
                self.armed = Some(armed);
                Ok(actual)
            }
        }
    }

    fn feed(&mut self) -> Result<(), LinuxWatchdogError> {
        let armed = self
            .armed
            .as_ref()
            .ok_or_else(|| LinuxWatchdogError::NotArmed {
                path: self.path.clone(),
            })?;
        ioctl::keepalive(armed.device.as_fd()).map_err(|source| LinuxWatchdogError::Keepalive {
            path: self.path.clone(),
            source,
        })
    }

    fn timeout(&self) -> Option<Duration> {
        self.armed.as_ref().map(|armed| armed.actual)
    }

    fn disarm(mut self) -> Result<(), LinuxWatchdogError> {
        match self.armed.take() {
            None => Ok(()),
            Some(mut armed) => {
                armed
                    .device
                    .write_all(b"V")
                    .map_err(|source| LinuxWatchdogError::MagicClose {
                        path: self.path.clone(),
                        source,
                    })
            }
        }
    }
}

#[cfg(test)]
mod tests;
