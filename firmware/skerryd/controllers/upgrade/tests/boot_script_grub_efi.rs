//! The boot script update in real GRUB-EFI: OVMF on QEMU's q35 machine starts a
//! GRUB made as the image builder makes it (`grub-mkimage -c`, `early_config()` as its
//! embedded config, run by GRUB's rescue parser), from a FAT ESP laid out as
//! `skerryd-upgrade` leaves it. Each
//! script's menu entry prints which script and slot booted; the environment puts slot
//! B first (the scripts' own fallback is A), so booting B shows the script read it.
//!
//! Four ESPs, one boot each: the factory one (`grub.cfg`, no script variables); after
//! the update put version 1 beside it (`grub.b.cfg` runs); the same with the block torn
//! between the switch's two writes, its first sector from before (the second copy's
//! choice, `grub.b.cfg`, runs); and with the named script missing (GRUB runs `grub.cfg`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use skerry_boot_state::grub::boot_script::{ENV_FILE, PRIMARY_SCRIPT, RUNNING, SECOND_SCRIPT};
use skerry_boot_state::grub::store::SECOND_COPY_SUFFIX;
use skerry_boot_state::grub::{early_config, grub_cfg, GrubEnvStore};
use skerry_boot_state::{BootState, BootStore, FileMedium, SlotName, StoreSpec};
use skerry_hil::qemu::files::{need_file, need_tool, ovmf_vars_copy, run_tool, OVMF_CODE_4M};
use skerry_hil::qemu::{DriveBus, EspImage, MachineConfig, Qemu};
use skerryd_upgrade::boot_script::{apply_carried, Outcome, IMAGE_JSON, SLOT_SCRIPT};

/// What the early config and the scripts use, built into GRUB.
const MODULES: &str = "part_gpt fat loadenv test echo sleep normal configfile";
/// OVMF to GRUB takes 5–8 s under TCG; this is for a loaded machine.
const BOOT: Duration = Duration::from_secs(120);

/// The slots as the image builder seeds them: A first, and the fragment's fallback.
fn seed() -> BootState {
    let slots = [SlotName::new("A").unwrap(), SlotName::new("B").unwrap()];
    BootState::new(&slots, 3).unwrap()
}

/// The environment on the ESP: B committed, so first. A script that boots B read it.
fn state() -> BootState {
    let mut state = seed();
    let b = SlotName::new("B").unwrap();
    state.begin_trial(&b).unwrap();
    state.mark_good(&b).unwrap();
    state
}

/// A boot script of `version`: the slot-selection fragment and one marker entry a slot.
fn script(version: u32) -> String {
    let seed = seed();
    let mut s = format!("set timeout=0\necho \"SKERRY-SCRIPT v{version} cmdpath=$cmdpath\"\n");
    s.push_str(&grub_cfg(&seed, Some("${cmdpath}/grubenv")));
    for slot in seed.order() {
        s.push_str(&format!(
            "menuentry \"Slot {slot}\" --id skerry-{slot} {{\n  echo \"SKERRY-BOOTED script=v{version} slot={slot}\"\n  sleep 600\n}}\n"
        ));
    }
    s
}

/// The ESP's `EFI/BOOT` files in a host directory.
fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

/// Boots an ESP holding `efi` and `files` in `EFI/BOOT`; returns what the marker line
/// said and the console before it.
fn boot(work: &Path, efi: &Path, files: &[(String, Vec<u8>)]) -> (String, String) {
    let dir = tempfile::tempdir_in(work).unwrap();
    let esp = EspImage::create(&dir.path().join("disk.img")).unwrap();
    esp.put(efi, "/EFI/BOOT/BOOTX64.EFI").unwrap();
    for (name, bytes) in files {
        let host = dir.path().join(name);
        std::fs::write(&host, bytes).unwrap();
        esp.put(&host, &format!("/EFI/BOOT/{name}")).unwrap();
    }
    let vars = ovmf_vars_copy(dir.path()).unwrap();
    let config = MachineConfig::new("qemu-system-x86_64", "q35")
        .drive(DriveBus::Pflash { unit: 0 }, Path::new(OVMF_CODE_4M), true)
        .drive(DriveBus::Pflash { unit: 1 }, &vars, false)
        .drive(DriveBus::Virtio { id: "esp".into() }, esp.path(), false);
    let mut qemu = Qemu::start(&config, dir.path()).unwrap();
    let markers = [
        "SKERRY-BOOTED script=v0 slot=A",
        "SKERRY-BOOTED script=v0 slot=B",
        "SKERRY-BOOTED script=v1 slot=A",
        "SKERRY-BOOTED script=v1 slot=B",
    ];
    let (i, console) = qemu
        .console()
        .expect_any(&markers, BOOT)
        .unwrap_or_else(|e| panic!("no script booted: {e}"));
    qemu.quit().unwrap();
    // Every line of the early config is a command GRUB's rescue parser knows.
    assert!(
        !console.to_lowercase().contains("unknown command"),
        "{console}"
    );
    (markers[i].to_owned(), console)
}

/// GRUB as the image builder makes it: `grub-mkimage` with the early config embedded
/// (`-c`, run by GRUB's rescue parser) and its modules built in.
fn grub_efi(work: &Path) -> PathBuf {
    need_tool("grub-mkimage", "grub-common").unwrap();
    need_file("/usr/lib/grub/x86_64-efi/moddep.lst", "grub-efi-amd64-bin").unwrap();
    need_file(OVMF_CODE_4M, "ovmf").unwrap();
    let early = work.join("early.cfg");
    std::fs::write(&early, early_config()).unwrap();
    let efi = work.join("BOOTX64.EFI");
    run_tool(
        Command::new("grub-mkimage")
            .args(["-O", "x86_64-efi", "-p", "/EFI/BOOT", "-c"])
            .arg(&early)
            .arg("-o")
            .arg(&efi)
            .args(MODULES.split_whitespace()),
    )
    .unwrap();
    efi
}

#[test]
fn real_grub_efi_runs_the_script_the_update_switched_to_and_survives_a_torn_switch() {
    let work = tempfile::tempdir().unwrap();
    let efi = grub_efi(work.path());

    // The factory ESP.
    let esp = work.path().join("esp");
    std::fs::create_dir(&esp).unwrap();
    GrubEnvStore::new(FileMedium::create(esp.join(ENV_FILE)))
        .commit(&state())
        .unwrap();
    std::fs::write(esp.join(PRIMARY_SCRIPT), script(0)).unwrap();
    let factory = files(&esp);
    let block_before = std::fs::read(esp.join(ENV_FILE)).unwrap();

    // The committed release carries version 1: the device's code path writes it.
    let root = work.path().join("slot");
    for (rel, bytes) in [
        (SLOT_SCRIPT, script(1)),
        (IMAGE_JSON, "{\"boot_script_version\":1}".to_owned()),
    ] {
        let path = root.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
    let spec = StoreSpec::Grub {
        path: esp.join(ENV_FILE),
    };
    let outcome = apply_carried(&root, &spec).unwrap();
    assert!(matches!(outcome, Outcome::Applied(_)), "{outcome:?}");
    let updated = files(&esp);

    // The block torn between its first sector (before the switch) and the rest (after);
    // the second copy is whole and after.
    let mut torn = updated.clone();
    for (name, bytes) in &mut torn {
        if name == ENV_FILE {
            bytes[..512].copy_from_slice(&block_before[..512]);
        }
    }
    let second = format!("{ENV_FILE}{SECOND_COPY_SUFFIX}");
    assert!(torn.iter().any(|(n, _)| *n == second));
    // The named script gone: the other one runs.
    let missing: Vec<_> = updated
        .iter()
        .filter(|(n, _)| n != SECOND_SCRIPT)
        .cloned()
        .collect();

    let (marker, console) = boot(work.path(), &efi, &factory);
    assert_eq!(marker, "SKERRY-BOOTED script=v0 slot=B", "{console}");
    assert!(console.contains(&format!("{RUNNING}grub.cfg")), "{console}");
    // The script runs in a context of its own (configfile) and still sees where GRUB
    // came from, which its menu entries need to find the slots' partitions.
    assert!(
        console.contains("SKERRY-SCRIPT v0 cmdpath=(hd0,gpt1)/EFI/BOOT"),
        "{console}"
    );

    let (marker, console) = boot(work.path(), &efi, &updated);
    assert_eq!(marker, "SKERRY-BOOTED script=v1 slot=B", "{console}");
    assert!(
        console.contains(&format!("{RUNNING}grub.b.cfg")),
        "{console}"
    );
    assert!(!console.contains("could not be run"), "{console}");

    let (marker, console) = boot(work.path(), &efi, &torn);
    assert_eq!(marker, "SKERRY-BOOTED script=v1 slot=B", "{console}");
    assert!(!console.contains("could not be run"), "{console}");

    let (marker, console) = boot(work.path(), &efi, &missing);
    assert_eq!(marker, "SKERRY-BOOTED script=v0 slot=B", "{console}");
    assert!(console.contains("neither choice could be run"), "{console}");
}
