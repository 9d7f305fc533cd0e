//! The QEMU runner itself, on real U-Boot (the quickest firmware to boot): a prompt with
//! no newline matches, typed lines run, a guest reset under `-no-reboot` ends QEMU with a
//! `SHUTDOWN` event saying why, and dropping a machine kills its process.

use std::path::Path;
use std::time::Duration;

use skerry_boot_state::uboot::env;
use skerry_boot_state::uboot::vars::Vars;
use skerry_hil::qemu::files::{need_file, UBOOT_QEMU_ARM64, VIRT_FLASH_BANK};
use skerry_hil::qemu::{DriveBus, MachineConfig, Qemu, ResetPolicy};

/// A flash bank whose environment waits `bootdelay` seconds before an empty `bootcmd`.
fn uboot_machine(dir: &Path, reset: ResetPolicy) -> MachineConfig {
    need_file(UBOOT_QEMU_ARM64, "u-boot-qemu").unwrap();
    let flash = dir.join("flash1.img");
    let mut vars = Vars::default();
    vars.set("bootdelay", "10");
    vars.set("bootcmd", "echo autoboot-ran");
    std::fs::write(&flash, env::encode(&vars, 0x40000, None).unwrap()).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&flash)
        .unwrap()
        .set_len(VIRT_FLASH_BANK)
        .unwrap();
    MachineConfig::new("qemu-system-aarch64", "virt")
        .cpu("cortex-a57")
        .bios(Path::new(UBOOT_QEMU_ARM64))
        .drive(DriveBus::Pflash { unit: 1 }, &flash, false)
        .reset(reset)
}

#[test]
fn console_prompt_typing_and_a_guest_reset_under_no_reboot() {
    let dir = tempfile::tempdir().unwrap();
    let mut qemu = Qemu::start(&uboot_machine(dir.path(), ResetPolicy::Exit), dir.path()).unwrap();
    let console = qemu.console();
    // U-Boot prints this and counts down on the same line: no newline follows it.
    console
        .expect("Hit any key to stop autoboot", Duration::from_secs(60))
        .unwrap();
    console.send_line("").unwrap();
    console.expect("=> ", Duration::from_secs(20)).unwrap();
    // The typed line is echoed as typed; only running it prints the joined value.
    console
        .send_line("setenv word typed; echo ${word}-back")
        .unwrap();
    console
        .expect("typed-back", Duration::from_secs(20))
        .unwrap();
    assert!(!console.transcript().contains("autoboot-ran"));
    console.send_line("reset").unwrap();
    let event = qemu
        .qmp()
        .wait_event("SHUTDOWN", Duration::from_secs(20))
        .unwrap();
    assert_eq!(event.data["reason"], "guest-reset", "{event:?}");
    assert!(qemu.wait_exit(Duration::from_secs(20)).unwrap().success());
}

#[test]
fn a_dropped_machine_leaves_no_process() {
    let dir = tempfile::tempdir().unwrap();
    let mut qemu =
        Qemu::start(&uboot_machine(dir.path(), ResetPolicy::Restart), dir.path()).unwrap();
    qemu.console()
        .expect("Hit any key", Duration::from_secs(60))
        .unwrap();
    let pid = qemu.pid();
    assert!(Path::new(&format!("/proc/{pid}")).exists());
    drop(qemu);
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "QEMU {pid} survived its drop"
    );
}
