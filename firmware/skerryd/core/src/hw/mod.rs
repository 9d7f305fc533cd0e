//! The machine's hardware as the daemon sees it, behind traits so every controller runs
//! in a test with fakes: power (reboot, shutdown) and the watchdog device.
//!
//! In `--root` mode power requests are written to `DIR/run/power-request` and the
//! daemon stops; the simulated board reads the request, runs the bootloader's power-on
//! step and starts the daemon again. On a device, PID 1 calls `reboot(2)` (the OS-image
//! issue).

pub mod power;

pub use power::{Power, PowerRequest, RootPower};
