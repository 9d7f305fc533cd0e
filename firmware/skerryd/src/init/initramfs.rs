//! The initramfs stage (`/init`): pseudo-filesystems, the watchdog driver and the
//! watchdog armed, the other modules, the slot found by its GPT name and mounted
//! read-only, then the switch to it (docs/os-image.md, "PID 1").

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use skerry_boards::{Role, Watchdog};

use super::cmdline::Cmdline;
use super::verity::{self, RootPlan};
use super::{console, dm, fatal, modules, mounts, switch_root, watchdog};

/// How long the slot's block device may take to appear.
pub const SLOT_WAIT: Duration = Duration::from_secs(20);

/// The board definition in the initramfs and in the slot.
pub const BOARD: &str = "/etc/skerry/board.toml";

/// The modules of `board` in load order, its watchdog driver first.
pub fn module_order(board: &skerry_boards::BoardDefinition) -> Vec<String> {
    let mut order = Vec::new();
    if let Watchdog::Linux { driver, .. } = &board.watchdog {
        order.push(driver.clone());
    }
    for name in &board.modules {
        if !order.contains(name) {
            order.push(name.clone());
        }
    }
    order
}

/// The GPT name of `slot`'s root partition.
pub fn slot_partition(board: &skerry_boards::BoardDefinition, slot: &str) -> Option<String> {
    board
        .disk
        .partitions
        .iter()
        .find(|p| {
            p.role == Role::Slot
                && p.slot.as_deref() == Some(slot)
                && p.content.as_deref() == Some("root")
        })
        .map(|p| p.name.clone())
}

fn modules_dir() -> PathBuf {
    let release = rustix::system::uname()
        .release()
        .to_string_lossy()
        .into_owned();
    Path::new("/lib/modules").join(release)
}

/// Runs the stage; never returns.
pub fn run() -> ! {
    for step in mounts::early() {
        if let Err(e) = mounts::apply(&step) {
            fatal(&super::chain(&e));
        }
    }
    console::attach();
    let text = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
    let cmdline = Cmdline::parse(&text);
    let Some(slot) = cmdline.slot().map(str::to_owned) else {
        fatal(&"the kernel command line names no slot (skerry.slot=A)");
    };
    console::line(&format!("SKERRY-INIT stage=initramfs slot={slot}"));
    if !cmdline.refused.is_empty() {
        console::line(&format!(
            "skerryd: ignored kernel arguments: {}",
            cmdline.refused.join(" ")
        ));
    }
    let board = match skerryd_core::device_board::read_definition(Path::new(BOARD)) {
        Ok(board) => board,
        Err(e) => fatal(&super::chain(&e)),
    };
    let order = module_order(&board);
    let dir = modules_dir();
    let mut armed = None;
    let mut skipped = |file: &str| {
        console::line(&format!(
            "skerryd: kernel module {file} is not for this machine (ENODEV); skipped"
        ))
    };
    if let Watchdog::Linux {
        device,
        driver,
        timeout_secs,
        ..
    } = &board.watchdog
    {
        if let Err(e) = modules::load_all(&dir, std::slice::from_ref(driver), &mut skipped) {
            fatal(&super::chain(&e));
        }
        match watchdog::arm(device, *timeout_secs) {
            Ok(watchdog) => {
                console::line(&format!(
                    "SKERRY-WATCHDOG armed device={} timeout={}",
                    watchdog.device.display(),
                    watchdog.timeout.as_secs()
                ));
                armed = Some(watchdog);
            }
            Err(e) => fatal(&e),
        }
    }
    if let Err(e) = modules::load_all(&dir, &order, &mut skipped) {
        fatal(&super::chain(&e));
    }
    let Some(label) = slot_partition(&board, &slot) else {
        fatal(&format!(
            "the board {} has no root partition for slot {slot:?}",
            board.name
        ));
    };
    let started = Instant::now();
    let partition = loop {
        match skerryd_core::partitions::find(
            Path::new("/sys/class/block"),
            Path::new("/dev"),
            &label,
        ) {
            // sysfs lists it a moment before devtmpfs has made its node.
            Ok(Some(found)) if found.device.exists() => break found,
            _ if started.elapsed() >= SLOT_WAIT => fatal(&format!(
                "no block device with GPT name {label:?} appeared within {} s",
                SLOT_WAIT.as_secs()
            )),
            _ => {
                if let Some(w) = armed.as_mut() {
                    w.feed();
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    };
    let root = match verity::plan(cmdline.get("verity"), board.verified_root) {
        Ok(RootPlan::Verified(arg)) => match verified_root(&partition.device, &arg) {
            Ok(node) => {
                console::line(&format!(
                    "SKERRY-VERITY mapped slot={slot} device={} data_blocks={} root={}",
                    node.display(),
                    arg.data_blocks,
                    arg.root_hash
                ));
                node
            }
            Err(e) => fatal(&format!("slot {slot}: the verified root: {e}")),
        },
        Ok(RootPlan::Plain) => partition.device.clone(),
        Err(e) => fatal(&format!("slot {slot} refused: {e}")),
    };
    if let Err(e) = mounts::apply(&mounts::slot_root(&root, Path::new(switch_root::NEW_ROOT))) {
        fatal(&super::chain(&e));
    }
    #[cfg(feature = "fault-hooks")]
    initramfs_fault(cmdline.get("fault"));
    if let Some(w) = armed.as_mut() {
        w.feed();
    }
    // Closed without the magic character: it stays armed.
    drop(armed);
    let error = switch_root::switch_and_exec();
    fatal(&error)
}

/// Maps `partition` through dm-verity with `arg`; returns the mapped device once its
/// node is there.
fn verified_root(partition: &Path, arg: &verity::Verity) -> Result<PathBuf, String> {
    let wait = |path: &Path| {
        let started = Instant::now();
        while !path.exists() {
            if started.elapsed() >= SLOT_WAIT {
                return Err(format!(
                    "{} did not appear within {} s",
                    path.display(),
                    SLOT_WAIT.as_secs()
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    };
    wait(Path::new(dm::CONTROL))?;
    let st = rustix::fs::stat(partition).map_err(|e| format!("{}: {e}", partition.display()))?;
    let device = format!(
        "{}:{}",
        rustix::fs::major(st.st_rdev),
        rustix::fs::minor(st.st_rdev)
    );
    let node = dm::create_readonly(
        verity::MAPPING,
        verity::sectors(arg),
        "verity",
        &verity::table_params(arg, &device),
    )
    .map_err(|e| super::chain(&e))?;
    wait(&node)?;
    Ok(node)
}

/// The initramfs fault hooks, after the watchdog is armed (test builds only).
#[cfg(feature = "fault-hooks")]
fn initramfs_fault(cmdline_value: Option<&str>) {
    use crate::fault::{self, Fault};
    match fault::configured(Path::new(switch_root::NEW_ROOT), cmdline_value) {
        Some(Fault::PanicInitramfs) => {
            console::line("skerryd: fault hook panic-initramfs: crashing the kernel");
            let _ = std::fs::write("/proc/sysrq-trigger", b"c");
            loop {
                std::thread::sleep(Duration::from_secs(3600));
            }
        }
        Some(Fault::HangInitramfs) => {
            console::line("skerryd: fault hook hang-initramfs: hanging with the watchdog armed");
            loop {
                std::thread::sleep(Duration::from_secs(3600));
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watchdog_driver_first_and_each_slot_its_partition() {
        let board = skerry_boards::shipped("qemu-x86_64").unwrap().unwrap();
        let order = module_order(&board);
        assert_eq!(order[0], "i6300esb");
        assert_eq!(order.iter().filter(|m| *m == "i6300esb").count(), 1);
        assert!(order.contains(&"ext4".to_owned()) && order.contains(&"vfat".to_owned()));
        assert_eq!(slot_partition(&board, "A").as_deref(), Some("root-a"));
        assert_eq!(slot_partition(&board, "B").as_deref(), Some("root-b"));
        assert_eq!(slot_partition(&board, "C"), None);
    }
}
