//! The daemon's side: [`SocketWatchdog`] sends each request as one datagram to the
//! board's socket. Dropping it sends nothing, so a crash leaves the device counting.

use std::io;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{Request, MAX_TIMEOUT, MIN_TIMEOUT};
use crate::{Error, ErrorKind, Watchdog};

/// A failure of the simulated board's watchdog socket.
#[derive(Debug, thiserror::Error)]
pub enum SocketWatchdogError {
    /// Nobody listens on the socket: the board has no simulated watchdog running.
    #[error(
        "no simulated watchdog listens on {path}: start the board's SimulatedWatchdogDevice there"
    )]
    Missing {
        /// Socket path.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// Sending a request failed.
    #[error("sending {request:?} to the simulated watchdog on {path} failed")]
    Send {
        /// Socket path.
        path: PathBuf,
        /// What was sent.
        request: Request,
        /// The OS error.
        source: io::Error,
    },
    /// Fed before it was armed.
    #[error("simulated watchdog on {path} fed before it was armed")]
    NotArmed {
        /// Socket path.
        path: PathBuf,
    },
    /// Armed again with another timeout.
    #[error("simulated watchdog on {path} is armed with {current:?}; re-arming with {requested:?} was refused")]
    AlreadyArmed {
        /// Socket path.
        path: PathBuf,
        /// Timeout it runs with.
        current: Duration,
        /// Timeout asked for.
        requested: Duration,
    },
    /// A timeout the device cannot count.
    #[error("the simulated watchdog on {path} counts {MIN_TIMEOUT:?} to {MAX_TIMEOUT:?}, not {requested:?}")]
    TimeoutOutOfRange {
        /// Socket path.
        path: PathBuf,
        /// Timeout asked for.
        requested: Duration,
    },
}

impl Error for SocketWatchdogError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Missing { .. } => ErrorKind::DeviceMissing,
            Self::Send { source, .. } => match source.kind() {
                io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused => {
                    ErrorKind::DeviceMissing
                }
                _ => ErrorKind::Device,
            },
            Self::NotArmed { .. } => ErrorKind::NotArmed,
            Self::AlreadyArmed { .. } => ErrorKind::AlreadyArmed,
            Self::TimeoutOutOfRange { .. } => ErrorKind::TimeoutOutOfRange,
        }
    }
}

#[derive(Debug)]
struct Armed {
    socket: UnixDatagram,
    timeout: Duration,
}

/// The simulated board's watchdog, reached through its Unix datagram socket.
#[derive(Debug)]
pub struct SocketWatchdog {
    path: PathBuf,
    armed: Option<Armed>,
}

impl SocketWatchdog {
    /// The watchdog listening on `path`, not contacted yet.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            armed: None,
        }
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn send(&self, socket: &UnixDatagram, request: Request) -> Result<(), SocketWatchdogError> {
        socket
            .send(&request.encode())
            .map(drop)
            .map_err(|source| SocketWatchdogError::Send {
                path: self.path.clone(),
                request,
                source,
            })
    }
}

impl Watchdog for SocketWatchdog {
    type Error = SocketWatchdogError;

    fn arm(&mut self, timeout: Duration) -> Result<Duration, SocketWatchdogError> {
        if !(MIN_TIMEOUT..=MAX_TIMEOUT).contains(&timeout) {
            return Err(SocketWatchdogError::TimeoutOutOfRange {
                path: self.path.clone(),
                requested: timeout,
            });
        }
        // The protocol counts whole milliseconds.
        let timeout = Duration::from_millis(u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX));
        match &self.armed {
            Some(armed) if armed.timeout == timeout => return Ok(timeout),
            Some(armed) => {
                return Err(SocketWatchdogError::AlreadyArmed {
                    path: self.path.clone(),
                    current: armed.timeout,
                    requested: timeout,
                })
            }
            None => {}
        }
        let missing = |source| SocketWatchdogError::Missing {
            path: self.path.clone(),
            source,
        };
        let socket = UnixDatagram::unbound().map_err(missing)?;
        socket.connect(&self.path).map_err(missing)?;
        // A device that stops reading must not block the feed loop: the send fails
        // instead, and the gate stops feeding.
        socket.set_nonblocking(true).map_err(missing)?;
        self.send(&socket, Request::Arm(timeout))?;
        self.armed = Some(Armed { socket, timeout });
        Ok(timeout)
    }

    fn feed(&mut self) -> Result<(), SocketWatchdogError> {
        let armed = self
            .armed
            .as_ref()
            .ok_or_else(|| SocketWatchdogError::NotArmed {
                path: self.path.clone(),
            })?;
        self.send(&armed.socket, Request::Feed)
    }

    fn timeout(&self) -> Option<Duration> {
        self.armed.as_ref().map(|armed| armed.timeout)
    }

    fn disarm(mut self) -> Result<(), SocketWatchdogError> {
        match self.armed.take() {
            None => Ok(()),
            Some(armed) => self.send(&armed.socket, Request::MagicClose),
        }
    }
}
