//! Scenarios as files: the format ([`format`]) and the runner that executes one on a
//! [`crate::rig::Board`] and prints the table scenario × board → result and time
//! ([`run`]).

pub mod format;

pub use format::{load, parse, Action, FormatError, Scenario, Step};
