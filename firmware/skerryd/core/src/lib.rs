//! What skerryd's subsystems share. Each subsystem (config, network and time, services
//! and health, watchdog, upgrade) is a crate of controllers under
//! `firmware/skerryd/controllers/`; they never call each other and meet in the runtime's
//! resources. This crate gives them the rest:
//!
//! - [`layout`]: where things live under `skerryd --root DIR` and on a device, and the
//!   board definition ([`device_board`] derives it from a device's `board.toml`);
//! - [`partitions`]: block devices by GPT name, from sysfs;
//! - [`formats`]: the versioned envelope of every `/var` file, and the trial overlay that
//!   lets a rolled-back slot find a `/var` it can read;
//! - [`events`]: the machine's event log;
//! - [`context`]: what each subsystem's `register` gets;
//! - [`ops`]: what the API hands requests to;
//! - [`hw`]: power requests (the watchdog drivers are in `skerry-watchdog`).

pub mod context;
pub mod device_board;
pub mod events;
pub mod formats;
pub mod hooks;
pub mod hw;
pub mod layout;
pub mod ops;
pub mod partitions;
pub mod resources;

pub use context::{BootView, Context};
pub use events::{Event, EventLog, Gap, NewEvent};
pub use formats::{Envelope, Format, FormatError, FormatFloor, VarArea};
pub use hooks::StopHooks;
pub use hw::{Power, PowerRequest, RootPower};
pub use layout::{BoardDefinition, BoardWatchdog, Layout, LayoutError, Mode, SlotDefinition};
pub use ops::{Answers, ConfigOps, Ops, PowerOps, ServiceOps, UpgradeOps};
