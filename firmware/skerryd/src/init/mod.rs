//! skerryd as PID 1 (docs/os-image.md, "PID 1"): the same static binary is the
//! initramfs' `/init` and the slot's `/sbin/skerryd`; started as PID 1 it runs the
//! stage its path names and never returns.
//!
//! # Layout
//! - [`initramfs`]: `/init`: pseudo-filesystems, modules, watchdog, the slot, switch;
//! - [`system`]: the slot's PID 1: mounts, `/var`, managed files, the daemon;
//! - [`cmdline`]: the `skerry.*` keys of the kernel command line;
//! - [`modules`]: `modules.dep` order and `finit_module`;
//! - [`verity`], [`dm`]: the verified root: `skerry.verity=` and the device-mapper table;
//! - [`watchdog`]: arming the board's watchdog;
//! - [`mounts`]: each stage's mounts as data;
//! - [`switch_root`]: leaving the initramfs;
//! - [`gpt`], [`blkpg`], [`state`]: growing and formatting the state partition;
//! - [`reaper`]: orphans, forwarded signals, the daemon's end;
//! - [`power`]: the power request, unmounting, `reboot(2)`;
//! - [`console`]: console lines and the panic hook.

pub mod blkpg;
pub mod cmdline;
pub mod console;
pub mod dm;
pub mod gpt;
pub mod initramfs;
pub mod loopback;
pub mod modules;
pub mod mounts;
pub mod power;
pub mod reaper;
pub mod state;
pub mod switch_root;
pub mod system;
pub mod verity;
pub mod watchdog;

/// Which stage a PID 1 runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Started by the kernel from the initramfs as `/init`.
    Initramfs,
    /// Exec'd from the initramfs as `/sbin/skerryd` in the slot.
    System,
}

impl Stage {
    /// The stage for the path PID 1 was started as (`argv[0]`).
    pub fn for_program(argv0: &str) -> Stage {
        if argv0 == "/init" || argv0.ends_with("/init") && !argv0.starts_with("/sbin") {
            Stage::Initramfs
        } else {
            Stage::System
        }
    }

    /// As the `SKERRY-INIT stage=` line spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Initramfs => "initramfs",
            Stage::System => "system",
        }
    }
}

/// Whether this process is PID 1.
pub fn is_pid1() -> bool {
    std::process::id() == 1
}

/// Runs PID 1; never returns.
pub fn run() -> ! {
    console::install_panic_hook();
    let argv0 = std::env::args().next().unwrap_or_default();
    match Stage::for_program(&argv0) {
        Stage::Initramfs => initramfs::run(),
        Stage::System => system::run(),
    }
}

/// An early failure: a `SKERRY-FATAL` line, then a reboot.
pub fn fatal(error: &dyn std::fmt::Display) -> ! {
    console::line(&console::fatal_line(&error.to_string()));
    power::finish(power::PowerAction::Reboot, "fatal")
}

/// The whole error chain of `error`, for a console line.
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stage_comes_from_the_program_path() {
        assert_eq!(Stage::for_program("/init"), Stage::Initramfs);
        assert_eq!(Stage::for_program("/sbin/skerryd"), Stage::System);
        assert_eq!(Stage::for_program("skerryd"), Stage::System);
        assert_eq!(Stage::Initramfs.as_str(), "initramfs");
    }
}
