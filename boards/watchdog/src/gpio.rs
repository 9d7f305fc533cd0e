//! Opening an external watchdog IC's pins: the Linux GPIO character device
//! (`linux-gpio` feature) or a Raspberry Pi's GPIO through `rppal` (`rpi` feature).

#[cfg(feature = "linux-gpio")]
pub mod cdev;
#[cfg(feature = "rpi")]
pub mod rpi;
