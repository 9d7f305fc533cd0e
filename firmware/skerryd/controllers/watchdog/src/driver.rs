//! The board's watchdog device, as `board.json` names it.

use std::path::PathBuf;
use std::time::Duration;

use skerry_watchdog::linux::{LinuxWatchdog, LinuxWatchdogError};
use skerry_watchdog::simulated::{SocketWatchdog, SocketWatchdogError};
use skerry_watchdog::{Error, ErrorKind, Watchdog};
use skerryd_core::{BoardWatchdog, Layout};

/// The driver of the board's device.
#[derive(Debug)]
pub enum BoardDriver {
    /// The simulated board's device on its socket.
    Simulated(SocketWatchdog),
    /// A Linux watchdog device.
    Linux(LinuxWatchdog),
}

/// A failure of either driver.
#[derive(Debug, thiserror::Error)]
pub enum BoardDriverError {
    /// The simulated device.
    #[error(transparent)]
    Simulated(#[from] SocketWatchdogError),
    /// The Linux device.
    #[error(transparent)]
    Linux(#[from] LinuxWatchdogError),
}

impl Error for BoardDriverError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Simulated(e) => e.kind(),
            Self::Linux(e) => e.kind(),
        }
    }
}

impl BoardDriver {
    /// The driver for `board`'s watchdog (paths under `layout`); `None` when the board
    /// has none. Nothing is opened until it is armed.
    pub fn for_board(board: &BoardWatchdog, layout: &Layout) -> Option<Self> {
        match board {
            BoardWatchdog::None => None,
            BoardWatchdog::Simulated { socket, .. } => {
                Some(Self::Simulated(SocketWatchdog::new(layout.resolve(socket))))
            }
            BoardWatchdog::Linux { device, .. } => {
                Some(Self::Linux(LinuxWatchdog::new(layout.resolve(device))))
            }
        }
    }

    /// `simulated:PATH` or `linux:PATH`.
    pub fn describe(&self) -> String {
        let (kind, path): (&str, PathBuf) = match self {
            Self::Simulated(w) => ("simulated", w.path().to_owned()),
            Self::Linux(w) => ("linux", w.path().to_owned()),
        };
        format!("{kind}:{}", path.display())
    }
}

impl Watchdog for BoardDriver {
    type Error = BoardDriverError;

    fn arm(&mut self, timeout: Duration) -> Result<Duration, BoardDriverError> {
        match self {
            Self::Simulated(w) => Ok(w.arm(timeout)?),
            Self::Linux(w) => Ok(w.arm(timeout)?),
        }
    }

    fn feed(&mut self) -> Result<(), BoardDriverError> {
        match self {
            Self::Simulated(w) => Ok(w.feed()?),
            Self::Linux(w) => Ok(w.feed()?),
        }
    }

    fn timeout(&self) -> Option<Duration> {
        match self {
            Self::Simulated(w) => w.timeout(),
            Self::Linux(w) => w.timeout(),
        }
    }

    fn disarm(self) -> Result<(), BoardDriverError> {
        match self {
            Self::Simulated(w) => Ok(w.disarm()?),
            Self::Linux(w) => Ok(w.disarm()?),
        }
    }
}
