//! The board's power on a relay, driven through an `embedded-hal` 1.0 output pin
//! (`rppal` on a Raspberry Pi controller with the `rpi` feature, a recording fake in
//! tests). The relay's polarity is part of the wiring, so it is a type, not a guess.

use std::time::Duration;

use embedded_hal::digital::{Error as _, OutputPin};

/// Which pin level closes the relay (powers the board).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Polarity {
    /// High closes it.
    ActiveHigh,
    /// Low closes it (most opto-isolated relay boards).
    ActiveLow,
}

/// The pin could not be driven.
#[derive(Debug, thiserror::Error)]
#[error("driving the power relay's pin {action} failed: {kind:?}")]
pub struct RelayError {
    pub action: &'static str,
    pub kind: embedded_hal::digital::ErrorKind,
}

/// A power relay.
#[derive(Debug)]
pub struct PowerRelay<P: OutputPin> {
    pin: P,
    polarity: Polarity,
    /// How long power stays off before it may come back (capacitors drain).
    pub off_time: Duration,
    on: Option<bool>,
}

impl<P: OutputPin> PowerRelay<P> {
    /// Takes the pin; the board's power state is unknown until the first switch.
    pub fn new(pin: P, polarity: Polarity, off_time: Duration) -> Self {
        PowerRelay {
            pin,
            polarity,
            off_time,
            on: None,
        }
    }

    fn drive(&mut self, on: bool) -> Result<(), RelayError> {
        let high = on == (self.polarity == Polarity::ActiveHigh);
        let (result, action) = if high {
            (self.pin.set_high(), "high")
        } else {
            (self.pin.set_low(), "low")
        };
        result.map_err(|e| RelayError {
            action,
            kind: e.kind(),
        })?;
        self.on = Some(on);
        Ok(())
    }

    /// Closes the relay: the board is powered.
    pub fn power_on(&mut self) -> Result<(), RelayError> {
        self.drive(true)
    }

    /// Opens the relay: the board loses power at once.
    pub fn power_off(&mut self) -> Result<(), RelayError> {
        self.drive(false)
    }

    /// Whether the relay was last closed (`None` before the first switch).
    pub fn is_on(&self) -> Option<bool> {
        self.on
    }

    /// Gives the pin back.
    pub fn release(self) -> P {
        self.pin
    }
}
