//! One QEMU boot of a built disk: OVMF (code read-only, a private copy of its
//! variables) on q35 under TCG starts the disk's GRUB, whose boot script picks slot A
//! and says so (`SKERRY-BOOT slot=A`), loads the kernel and the initramfs from slot A's
//! ext4, and the kernel runs our `/init` (a stand-in static binary here; the real
//! skerryd as PID 1 is tested with it). The kernel's command line is checked too: the
//! per-device `SKERRY_DEVICE_ARGS` in the ESP's environment reaches it when it is only
//! `skerry.*` keys with plain values, and is dropped whole when it is not.

mod image_support;

use std::path::Path;
use std::time::{Duration, Instant};

use std::process::Command;

use skerry_boot_state::grub::GrubEnvStore;
use skerry_boot_state::FileMedium;

use image_support::{build_ok, fake_skerryd, need_build_tools, need_tool, tool, MARKER};
use skerry_hil::qemu::files::{need_file, ovmf_vars_copy, OVMF_CODE_4M};
use skerry_hil::qemu::{DriveBus, MachineConfig, Qemu, ResetPolicy};

/// OVMF to GRUB takes 5–8 s under TCG and the kernel a few more; this is for a loaded machine.
const BOOT: Duration = Duration::from_secs(180);

/// Sets `SKERRY_DEVICE_ARGS` in the disk's environment block and its second copy with
/// our GRUB store (as `skerryctl boot set-device-args` does), through mtools.
fn set_device_args(disk: &Path, dir: &Path, args: &str) {
    let board = skerry_boards::shipped("qemu-x86_64").unwrap().unwrap();
    let esp = format!(
        "{}@@{}",
        disk.display(),
        skerry_boards::layout::place(&board.disk)[0].start
    );
    let mtools = |args: &[&str]| {
        tool(
            Command::new("mcopy")
                .env("MTOOLS_SKIP_CHECK", "1")
                .args(args),
        );
    };
    let env = dir.join("grubenv");
    for name in ["grubenv", "grubenv.b"] {
        let local = dir.join(name);
        let local = local.to_str().unwrap();
        mtools(&["-n", "-i", &esp, &format!("::/EFI/BOOT/{name}"), local]);
    }
    GrubEnvStore::new(FileMedium::open(&env).unwrap())
        .commit_variables(&[("SKERRY_DEVICE_ARGS", Some(args))])
        .unwrap();
    for name in ["grubenv", "grubenv.b"] {
        let local = dir.join(name);
        let local = local.to_str().unwrap();
        mtools(&["-o", "-i", &esp, local, &format!("::/EFI/BOOT/{name}")]);
    }
}

/// Boots `disk` and returns the kernel's command line, after our `/init` ran; the
/// console up to it is the second value.
fn boot(dir: &Path, disk: &Path) -> (String, String) {
    let vars = ovmf_vars_copy(dir).unwrap();
    let config = MachineConfig::new("qemu-system-x86_64", "q35")
        .memory_mib(512)
        .reset(ResetPolicy::Exit)
        .drive(DriveBus::Pflash { unit: 0 }, Path::new(OVMF_CODE_4M), true)
        .drive(DriveBus::Pflash { unit: 1 }, &vars, false)
        .drive(DriveBus::Virtio { id: "disk".into() }, disk, false);
    let started = Instant::now();
    let mut qemu = Qemu::start(&config, dir).unwrap();
    let console = qemu.console();
    let grub = console.expect("SKERRY-BOOT slot=A", BOOT).unwrap();
    let at_grub = started.elapsed();
    console.expect("Command line: ", BOOT).unwrap();
    let cmdline = console.expect("\n", BOOT).unwrap();
    console.expect("Run /init as init process", BOOT).unwrap();
    console.expect(MARKER, BOOT).unwrap();
    eprintln!(
        "QEMU boot: GRUB's marker after {at_grub:.1?}, our /init after {:.1?}",
        started.elapsed()
    );
    qemu.quit().unwrap();
    (cmdline.trim().to_owned(), grub)
}

const BASE: &str = "BOOT_IMAGE=/boot/vmlinuz skerry.slot=A console=ttyS0,115200 panic=10 ro";

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
    let good = "skerry.join=https://10.0.2.100:8080/join?t=a1%2B skerry.logs=udp:10.0.2.2:514";
    set_device_args(&disk, dir.path(), good);
    // grub.cfg appends slot A's verity parameters (SKERRY_VERITY_A) after the device args.
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("disk.img.json")).unwrap()).unwrap();
    let verity = meta["slot"]["kernel_arg"].as_str().unwrap().to_owned();
    assert!(verity.starts_with("skerry.verity="), "{verity}");
    let (cmdline, _) = boot(dir.path(), &disk);
    assert_eq!(cmdline, format!("{BASE} {good} {verity}"));

    set_device_args(&disk, dir.path(), "skerry.join=x init=/bin/sh");
    let (cmdline, grub) = boot(dir.path(), &disk);
    assert_eq!(cmdline, format!("{BASE} {verity}"));
    assert!(grub.contains("SKERRY_DEVICE_ARGS dropped"), "{grub}");
}
