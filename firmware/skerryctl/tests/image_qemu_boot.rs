//! One QEMU boot of a built disk: OVMF (code read-only, a private copy of its
//! variables) on q35 under TCG starts the disk's GRUB, whose boot script picks slot A
//! and says so (`SKERRY-BOOT slot=A`), loads the kernel and the initramfs from slot A's
//! ext4, and the kernel runs our `/init` (a stand-in static binary here; the real
//! skerryd as PID 1 is tested with it). The kernel's command line is checked too.

mod image_support;

use std::path::Path;
use std::time::{Duration, Instant};

use image_support::{build_ok, fake_skerryd, need_build_tools, need_tool, MARKER};
use skerry_hil::qemu::files::{need_file, ovmf_vars_copy, OVMF_CODE_4M};
use skerry_hil::qemu::{DriveBus, MachineConfig, Qemu, ResetPolicy};

/// OVMF to GRUB takes 5–8 s under TCG and the kernel a few more; this is for a loaded machine.
const BOOT: Duration = Duration::from_secs(180);

#[test]
fn a_built_disk_boots_slot_a_to_our_init() {
    need_build_tools();
    need_tool(
        "qemu-system-x86_64",
        "qemu-system-x86 (scripts/deps/qemu.backports.apt)",
    );
    need_file(OVMF_CODE_4M, "ovmf").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let disk = dir.path().join("disk.img");
    build_ok(&disk, &fake_skerryd(dir.path()), &[]);
    let vars = ovmf_vars_copy(dir.path()).unwrap();
    let config = MachineConfig::new("qemu-system-x86_64", "q35")
        .memory_mib(512)
        .reset(ResetPolicy::Exit)
        .drive(DriveBus::Pflash { unit: 0 }, Path::new(OVMF_CODE_4M), true)
        .drive(DriveBus::Pflash { unit: 1 }, &vars, false)
        .drive(DriveBus::Virtio { id: "disk".into() }, &disk, false);
    let started = Instant::now();
    let mut qemu = Qemu::start(&config, dir.path()).unwrap();
    let console = qemu.console();
    console.expect("SKERRY-BOOT slot=A", BOOT).unwrap();
    let grub = started.elapsed();
    let kernel = console.expect("Command line: ", BOOT).unwrap();
    let cmdline = console.expect("\n", BOOT).unwrap();
    assert_eq!(
        cmdline.trim(),
        "BOOT_IMAGE=/boot/vmlinuz skerry.slot=A console=ttyS0,115200 panic=10 ro",
        "{kernel}"
    );
    console.expect("Run /init as init process", BOOT).unwrap();
    console.expect(MARKER, BOOT).unwrap();
    eprintln!(
        "QEMU boot: GRUB's marker after {grub:.1?}, our /init after {:.1?}",
        started.elapsed()
    );
    qemu.quit().unwrap();
}
