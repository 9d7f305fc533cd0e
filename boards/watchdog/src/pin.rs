//! An external watchdog IC (STWD100, TPS3823, MAX6369 and the like) driven through
//! `embedded-hal` output pins.
//!
//! The IC resets the board unless its input (WDI) sees an edge within its fixed timeout,
//! so a feed toggles the feed pin. An IC with an enable input is armed and disarmed by
//! driving it; one without runs from power-on and cannot be stopped.
//!
//! Dropping the driver (a crash) leaves the pins alone so the IC keeps counting. Wire the
//! enable input so that its released level (pull resistor) keeps the IC enabled: a GPIO
//! line released by a dead process must not disarm it.

use std::time::Duration;

use embedded_hal::digital::{self, OutputPin};

use crate::{Error, ErrorKind, Watchdog};

/// Which level of the enable pin turns the IC on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnableLevel {
    /// High enables.
    ActiveHigh,
    /// Low enables (e.g. STWD100's `EN`).
    ActiveLow,
}

/// The type of the enable pin of an IC that has none; it cannot be constructed.
#[derive(Debug)]
pub enum NoEnablePin {}

impl digital::ErrorType for NoEnablePin {
    type Error = core::convert::Infallible;
}

impl OutputPin for NoEnablePin {
    fn set_low(&mut self) -> Result<(), Self::Error> {
        match *self {}
    }
    fn set_high(&mut self) -> Result<(), Self::Error> {
        match *self {}
    }
}

/// Which pin failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinRole {
    /// The watchdog input (WDI).
    Feed,
    /// The enable input.
    Enable,
}

impl std::fmt::Display for PinRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Feed => "feed (WDI)",
            Self::Enable => "enable",
        })
    }
}

/// A failure of the external watchdog IC.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PinWatchdogError {
    /// Driving a pin failed.
    #[error("driving the watchdog IC's {role} pin failed ({kind:?}): {detail}")]
    Pin {
        /// Which pin.
        role: PinRole,
        /// The pin driver's kind of failure.
        kind: digital::ErrorKind,
        /// The pin driver's error, as it prints itself.
        detail: String,
    },
    /// Fed before it was armed.
    #[error("watchdog IC fed before it was armed")]
    NotArmed,
    /// Armed again with another timeout.
    #[error("watchdog IC is armed for {current:?}; re-arming for {requested:?} was refused")]
    AlreadyArmed {
        /// Timeout it was armed for.
        current: Duration,
        /// Timeout asked for.
        requested: Duration,
    },
    /// The IC's fixed timeout is longer than asked: it would reset the board too late.
    #[error("the watchdog IC's fixed timeout {ic:?} is longer than the {requested:?} asked for")]
    TimeoutOutOfRange {
        /// Timeout asked for.
        requested: Duration,
        /// The IC's timeout.
        ic: Duration,
    },
    /// An IC without an enable pin cannot be stopped.
    #[error(
        "this watchdog IC has no enable pin and cannot be stopped; it resets the board unless fed"
    )]
    CannotStop,
}

impl Error for PinWatchdogError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Pin { .. } => ErrorKind::Device,
            Self::NotArmed => ErrorKind::NotArmed,
            Self::AlreadyArmed { .. } => ErrorKind::AlreadyArmed,
            Self::TimeoutOutOfRange { .. } => ErrorKind::TimeoutOutOfRange,
            Self::CannotStop => ErrorKind::Unsupported,
        }
    }
}

fn pin_error<E: digital::Error>(role: PinRole) -> impl FnOnce(E) -> PinWatchdogError {
    move |error| PinWatchdogError::Pin {
        role,
        kind: error.kind(),
        detail: format!("{error:?}"),
    }
}

#[derive(Debug)]
struct Enable<E> {
    pin: E,
    level: EnableLevel,
}

impl<E: OutputPin> Enable<E> {
    fn drive(&mut self, on: bool) -> Result<(), PinWatchdogError> {
        let high = on == (self.level == EnableLevel::ActiveHigh);
        let result = if high {
            self.pin.set_high()
        } else {
            self.pin.set_low()
        };
        result.map_err(pin_error(PinRole::Enable))
    }
}

/// An external watchdog IC fed by toggling `F`, optionally enabled through `E`.
#[derive(Debug)]
pub struct PinWatchdog<F, E = NoEnablePin> {
    feed: F,
    enable: Option<Enable<E>>,
    ic_timeout: Duration,
    high: bool,
    armed_for: Option<Duration>,
}

impl<F: OutputPin> PinWatchdog<F, NoEnablePin> {
    /// An IC without an enable pin: it counts from power-on, with its fixed `ic_timeout`.
    pub fn always_running(feed: F, ic_timeout: Duration) -> Self {
        Self {
            feed,
            enable: None,
            ic_timeout,
            high: false,
            armed_for: None,
        }
    }
}

impl<F: OutputPin, E: OutputPin> PinWatchdog<F, E> {
    /// An IC enabled by driving `enable` to `level`, with its fixed `ic_timeout`. The pin
    /// is left as it is until [`Watchdog::arm`].
    pub fn with_enable(feed: F, enable: E, level: EnableLevel, ic_timeout: Duration) -> Self {
        Self {
            feed,
            enable: Some(Enable { pin: enable, level }),
            ic_timeout,
            high: false,
            armed_for: None,
        }
    }

    /// An IC whose enable pin is optional (for boards that describe it as data).
    pub fn new(feed: F, enable: Option<(E, EnableLevel)>, ic_timeout: Duration) -> Self {
        Self {
            feed,
            enable: enable.map(|(pin, level)| Enable { pin, level }),
            ic_timeout,
            high: false,
            armed_for: None,
        }
    }

    fn toggle(&mut self) -> Result<(), PinWatchdogError> {
        let result = if self.high {
            self.feed.set_low()
        } else {
            self.feed.set_high()
        };
        result.map_err(pin_error(PinRole::Feed))?;
        self.high = !self.high;
        Ok(())
    }
}

impl<F: OutputPin, E: OutputPin> Watchdog for PinWatchdog<F, E> {
    type Error = PinWatchdogError;

    /// Accepts any timeout at least the IC's fixed one and returns the IC's (the gate
    /// then feeds often enough for it); a shorter one cannot be counted.
    fn arm(&mut self, timeout: Duration) -> Result<Duration, PinWatchdogError> {
        match self.armed_for {
            Some(current) if current == timeout => return Ok(self.ic_timeout),
            Some(current) => {
                return Err(PinWatchdogError::AlreadyArmed {
                    current,
                    requested: timeout,
                })
            }
            None => {}
        }
        if timeout < self.ic_timeout {
            return Err(PinWatchdogError::TimeoutOutOfRange {
                requested: timeout,
                ic: self.ic_timeout,
            });
        }
        // Feed first so an IC that was already counting starts a fresh period.
        self.toggle()?;
        if let Some(enable) = &mut self.enable {
            enable.drive(true)?;
        }
        self.armed_for = Some(timeout);
        Ok(self.ic_timeout)
    }

    fn feed(&mut self) -> Result<(), PinWatchdogError> {
        if self.armed_for.is_none() {
            return Err(PinWatchdogError::NotArmed);
        }
        self.toggle()
    }

    fn timeout(&self) -> Option<Duration> {
        self.armed_for.map(|_| self.ic_timeout)
    }

    fn disarm(mut self) -> Result<(), PinWatchdogError> {
        if self.armed_for.is_none() {
            return Ok(());
        }
        match &mut self.enable {
            Some(enable) => enable.drive(false),
            None => Err(PinWatchdogError::CannotStop),
        }
    }
}

#[cfg(test)]
mod tests;
