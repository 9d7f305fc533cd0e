//! skerryd, the device daemon: the machine API over mutual TLS, and every subsystem as
//! controllers on one runtime. `main.rs` is wiring only; [`daemon`] assembles the parts.
//!
//! Where things are:
//! - `firmware/skerryd/core` (`skerryd-core`): the machine root's layout, versioned
//!   `/var` formats, the event log, what the API asks of each subsystem;
//! - `firmware/skerryd/controllers/*`: one crate per subsystem (config, network and
//!   time, services and health, watchdog, upgrade);
//! - [`api`]: the gRPC methods, translating requests into reads of the state and calls
//!   on the subsystems;
//! - [`daemon`]: open, register, serve, stop;
//! - [`init`]: what only PID 1 does (mounts, modules, watchdog arming, `/var`, reaping,
//!   `reboot(2)`), unused with `--root DIR`;
//! - [`fault`]: the test-only fault hooks (feature `fault-hooks`).

pub mod api;
pub mod daemon;
pub mod fault;
pub mod init;
pub mod logging;
