//! Output pins on the Linux GPIO character device (`/dev/gpiochipN`) through `gpio-cdev`.
//!
//! The line stays requested while the [`CdevPin`] lives. When a process dies the kernel
//! releases its lines and their level is then up to the chip and the board's pull
//! resistors: wire an external watchdog IC so that a released enable line keeps it on.

use std::path::{Path, PathBuf};
use std::time::Duration;

use embedded_hal::digital::{self, OutputPin};
use gpio_cdev::{Chip, LineHandle, LineRequestFlags};

use crate::pin::{EnableLevel, PinWatchdog};

/// The consumer name the kernel shows for our lines (`gpioinfo`).
pub const CONSUMER: &str = "skerry-watchdog";

/// A GPIO line that could not be opened or driven.
#[derive(Debug, thiserror::Error)]
pub enum CdevPinError {
    /// The chip or line could not be requested.
    #[error("cannot request line {offset} of GPIO chip {chip} as an output")]
    Request {
        /// Chip device path.
        chip: PathBuf,
        /// Line offset on the chip.
        offset: u32,
        /// The driver's error.
        source: gpio_cdev::Error,
    },
    /// Setting the line's value failed.
    #[error("cannot set line {offset} of GPIO chip {chip}")]
    Set {
        /// Chip device path.
        chip: PathBuf,
        /// Line offset on the chip.
        offset: u32,
        /// The driver's error.
        source: gpio_cdev::Error,
    },
}

impl digital::Error for CdevPinError {
    fn kind(&self) -> digital::ErrorKind {
        digital::ErrorKind::Other
    }
}

/// One output line of a GPIO chip.
#[derive(Debug)]
pub struct CdevPin {
    handle: LineHandle,
    chip: PathBuf,
    offset: u32,
}

impl CdevPin {
    /// Requests line `offset` of `chip` as an output, starting `high` or low.
    pub fn open(chip: &Path, offset: u32, high: bool) -> Result<Self, CdevPinError> {
        let request = |source| CdevPinError::Request {
            chip: chip.to_owned(),
            offset,
            source,
        };
        let handle = Chip::new(chip)
            .and_then(|mut c| c.get_line(offset))
            .and_then(|line| line.request(LineRequestFlags::OUTPUT, u8::from(high), CONSUMER))
            .map_err(request)?;
        Ok(Self {
            handle,
            chip: chip.to_owned(),
            offset,
        })
    }

    fn set(&mut self, high: bool) -> Result<(), CdevPinError> {
        self.handle
            .set_value(u8::from(high))
            .map_err(|source| CdevPinError::Set {
                chip: self.chip.clone(),
                offset: self.offset,
                source,
            })
    }
}

impl digital::ErrorType for CdevPin {
    type Error = CdevPinError;
}

impl OutputPin for CdevPin {
    fn set_low(&mut self) -> Result<(), CdevPinError> {
        self.set(false)
    }
    fn set_high(&mut self) -> Result<(), CdevPinError> {
        self.set(true)
    }
}

/// An external watchdog IC on `chip`: its input on line `feed`, its enable (if it has
/// one) on another line of the same chip. The enable line starts at its disabling level;
/// [`crate::Watchdog::arm`] turns the IC on.
pub fn open_watchdog_ic(
    chip: &Path,
    feed: u32,
    enable: Option<(u32, EnableLevel)>,
    ic_timeout: Duration,
) -> Result<PinWatchdog<CdevPin, CdevPin>, CdevPinError> {
    let feed = CdevPin::open(chip, feed, false)?;
    let enable = enable
        .map(|(offset, level)| {
            let off_high = level == EnableLevel::ActiveLow;
            CdevPin::open(chip, offset, off_high).map(|pin| (pin, level))
        })
        .transpose()?;
    Ok(PinWatchdog::new(feed, enable, ic_timeout))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_chip_is_named() {
        let err = open_watchdog_ic(
            Path::new("/dev/gpiochip-none"),
            17,
            None,
            Duration::from_secs(1),
        )
        .unwrap_err();
        let message = err.to_string();
        assert!(
            message.contains("/dev/gpiochip-none") && message.contains("line 17"),
            "{message}"
        );
        assert!(std::error::Error::source(&err).is_some());
    }
}
