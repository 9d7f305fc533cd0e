//! The simulated board's watchdog: a device that lives outside the daemon's process and
//! listens on a Unix datagram socket, so it keeps counting, and fires, while the daemon
//! is hung, stopped (SIGSTOP) or killed.
//!
//! [`SocketWatchdog`] is the daemon's driver; [`SimulatedWatchdogDevice`] is the
//! board's side (the tests and the simulated board harness run it). The protocol is one
//! short ASCII datagram per request, without replies (like toggling a pin):
//!
//! ```text
//! arm MILLIS    start (or restart) the countdown with a timeout of MILLIS ms
//! feed          restart the countdown
//! V             magic close: stop the countdown in an orderly way
//! ```
//!
//! A datagram longer than [`MAX_DATAGRAM`] bytes, or anything else, is refused and
//! counted by the device; it never changes the countdown.

mod device;
mod driver;

use std::time::Duration;

pub use device::{DeviceRecord, SimulatedWatchdogDevice, DEVICE_FEED_LOG_LIMIT};
pub use driver::{SocketWatchdog, SocketWatchdogError};

/// The longest datagram of the protocol.
pub const MAX_DATAGRAM: usize = 32;
/// The shortest timeout the simulated device counts.
pub const MIN_TIMEOUT: Duration = Duration::from_millis(100);
/// The longest timeout the simulated device counts.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(3600);

/// One request of the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// Start the countdown with this timeout.
    Arm(Duration),
    /// Restart the countdown.
    Feed,
    /// Stop the countdown (orderly).
    MagicClose,
}

/// A datagram the device refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// Longer than [`MAX_DATAGRAM`].
    #[error("a {len}-byte datagram is longer than the protocol's {MAX_DATAGRAM} bytes")]
    TooLong {
        /// Bytes received (at least).
        len: usize,
    },
    /// Not one of `arm MILLIS`, `feed`, `V`.
    #[error("{text:?} is not a watchdog request (arm MILLIS, feed, V)")]
    Unknown {
        /// The datagram, lossily decoded.
        text: String,
    },
    /// An arm with a timeout outside [`MIN_TIMEOUT`]..=[`MAX_TIMEOUT`].
    #[error("arm {millis}: the timeout must be {} to {} ms", MIN_TIMEOUT.as_millis(), MAX_TIMEOUT.as_millis())]
    TimeoutOutOfRange {
        /// Milliseconds asked for.
        millis: u64,
    },
}

impl Request {
    /// The datagram for this request.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Self::Arm(timeout) => format!("arm {}", timeout.as_millis()).into_bytes(),
            Self::Feed => b"feed".to_vec(),
            Self::MagicClose => b"V".to_vec(),
        }
    }

    /// Reads one datagram.
    pub fn decode(datagram: &[u8]) -> Result<Self, RequestError> {
        if datagram.len() > MAX_DATAGRAM {
            return Err(RequestError::TooLong {
                len: datagram.len(),
            });
        }
        let unknown = || RequestError::Unknown {
            text: String::from_utf8_lossy(datagram).into_owned(),
        };
        match datagram {
            b"feed" => return Ok(Self::Feed),
            b"V" => return Ok(Self::MagicClose),
            _ => {}
        }
        let millis = datagram
            .strip_prefix(b"arm ")
            .filter(|digits| !digits.is_empty() && digits.iter().all(u8::is_ascii_digit))
            .and_then(|digits| std::str::from_utf8(digits).ok())
            .ok_or_else(unknown)?
            .parse::<u64>()
            .map_err(|_| unknown())?;
        let timeout = Duration::from_millis(millis);
        if !(MIN_TIMEOUT..=MAX_TIMEOUT).contains(&timeout) {
            return Err(RequestError::TimeoutOutOfRange { millis });
        }
        Ok(Self::Arm(timeout))
    }
}

#[cfg(test)]
mod tests;
