//! Output pins on a Raspberry Pi's GPIO header through `rppal` (BCM numbering).
//!
//! `rppal` restores a pin's mode when its handle drops; our pins opt out, so a crashing
//! daemon leaves the external watchdog IC enabled and counting.

use std::time::Duration;

use rppal::gpio::{Gpio, OutputPin};

use crate::pin::{EnableLevel, PinWatchdog};

/// A GPIO pin that could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum RpiPinError {
    /// The GPIO peripheral or the pin could not be opened.
    #[error("cannot open Raspberry Pi GPIO {bcm} (BCM numbering) as an output")]
    Open {
        /// BCM pin number.
        bcm: u8,
        /// The driver's error.
        source: rppal::gpio::Error,
    },
}

fn output(gpio: &Gpio, bcm: u8, high: bool) -> Result<OutputPin, RpiPinError> {
    let pin = gpio
        .get(bcm)
        .map_err(|source| RpiPinError::Open { bcm, source })?;
    let mut pin = if high {
        pin.into_output_high()
    } else {
        pin.into_output_low()
    };
    pin.set_reset_on_drop(false);
    Ok(pin)
}

/// An external watchdog IC on BCM pin `feed`, with its enable (if it has one) on another
/// pin. The enable pin starts at its disabling level; [`crate::Watchdog::arm`] turns it on.
pub fn open_watchdog_ic(
    feed: u8,
    enable: Option<(u8, EnableLevel)>,
    ic_timeout: Duration,
) -> Result<PinWatchdog<OutputPin, OutputPin>, RpiPinError> {
    let gpio = Gpio::new().map_err(|source| RpiPinError::Open { bcm: feed, source })?;
    let feed_pin = output(&gpio, feed, false)?;
    let enable = enable
        .map(|(bcm, level)| output(&gpio, bcm, level == EnableLevel::ActiveLow).map(|p| (p, level)))
        .transpose()?;
    Ok(PinWatchdog::new(feed_pin, enable, ic_timeout))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_raspberry_pi_opening_fails_with_a_named_pin() {
        // This host has no BCM GPIO peripheral; on a Pi this test would open real pins,
        // so it only runs where /dev/gpiomem is absent.
        if std::path::Path::new("/dev/gpiomem").exists() {
            eprintln!("skipped: /dev/gpiomem exists, this may be a Raspberry Pi");
            return;
        }
        let err = open_watchdog_ic(4, None, Duration::from_secs(1)).unwrap_err();
        assert!(err.to_string().contains("GPIO 4"), "{err}");
    }
}
