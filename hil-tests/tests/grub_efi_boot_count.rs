//! The generated `grub.cfg` fragment in real GRUB-EFI: OVMF (read-only code, a private
//! copy of its variables) on QEMU's q35 machine starts a standalone GRUB
//! (`grub-mkstandalone -O x86_64-efi`, the fragment as its embedded `grub.cfg`) from
//! `EFI/BOOT/BOOTX64.EFI` on a FAT ESP, with the environment in `EFI/BOOT/grubenv` (and
//! the store's second copy, `grubenv.b`) next to it. Each slot's menu entry prints a marker. Between boots the test reads `grubenv` back
//! out of the disk image (mtools) with our GRUB store and `grub-editenv`, and resets the
//! machine over QMP.
//!
//! - Saving works: a trial's attempts go down by one per boot and are on the ESP before
//!   the next reset; after its last attempt the good slot starts again.
//! - Saving fails (the disk is read-only, so GRUB's `save_env` reports "failure writing
//!   sector"): the good slot starts and the console says why, at every power-on.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use skerry_boot_state::grub::store::SECOND_COPY_SUFFIX;
use skerry_boot_state::grub::{grub_cfg, mapping, GrubEnvStore};
use skerry_boot_state::uboot::vars::Vars;
use skerry_boot_state::{BootState, BootStore, FileMedium, SlotName};
use skerry_hil::qemu::files::{need_file, need_tool, ovmf_vars_copy, run_tool, OVMF_CODE_4M};
use skerry_hil::qemu::{DriveBus, EspImage, MachineConfig, Qemu};

/// Where the environment lives on the ESP, next to GRUB.
const GRUBENV: &str = "/EFI/BOOT/grubenv";
/// The modules the fragment and the menu entries use, built into GRUB.
const MODULES: &str = "part_gpt fat loadenv test echo sleep normal";
/// OVMF to GRUB takes 5–8 s under TCG; this is for a loaded machine.
const BOOT: Duration = Duration::from_secs(120);
const SAVE_FAILED: &str = "saving the environment failed; starting known-good slot";

fn names(list: &[&str]) -> Vec<SlotName> {
    list.iter().map(|n| SlotName::new(n).unwrap()).collect()
}

/// A scratch directory with an ESP holding GRUB and `state`, and OVMF's variables.
struct Rig {
    dir: tempfile::TempDir,
    esp: EspImage,
    vars: PathBuf,
}

impl Rig {
    fn new(seed: &BootState, state: &BootState) -> Rig {
        need_tool("grub-mkstandalone", "grub-common").unwrap();
        need_file("/usr/lib/grub/x86_64-efi/moddep.lst", "grub-efi-amd64-bin").unwrap();
        need_file(OVMF_CODE_4M, "ovmf").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = String::from("set timeout=0\n");
        cfg.push_str(&grub_cfg(
            seed,
            Some(&format!("${{cmdpath}}/{}", "grubenv")),
        ));
        for slot in seed.order() {
            cfg.push_str(&format!(
                "menuentry \"Slot {slot}\" --id skerry-{slot} {{\n  echo \"SKERRY-BOOT-{slot}\"\n  sleep 600\n}}\n"
            ));
        }
        let cfg_path = dir.path().join("grub.cfg");
        std::fs::write(&cfg_path, cfg).unwrap();
        let efi = dir.path().join("BOOTX64.EFI");
        run_tool(
            Command::new("grub-mkstandalone")
                .args(["-O", "x86_64-efi"])
                .arg(format!("--modules={MODULES}"))
                .arg(format!("--install-modules={MODULES}"))
                .args(["--locales=", "--fonts=", "--themes=", "-o"])
                .arg(&efi)
                .arg(format!("boot/grub/grub.cfg={}", cfg_path.display())),
        )
        .unwrap();
        let esp = EspImage::create(&dir.path().join("disk.img")).unwrap();
        esp.put(&efi, "/EFI/BOOT/BOOTX64.EFI").unwrap();
        // The store writes the block and its second copy beside it; both go on the ESP.
        let env = dir.path().join("grubenv");
        GrubEnvStore::new(FileMedium::create(&env))
            .commit(state)
            .unwrap();
        esp.put(&env, GRUBENV).unwrap();
        let second = dir.path().join(format!("grubenv{SECOND_COPY_SUFFIX}"));
        esp.put(&second, &format!("{GRUBENV}{SECOND_COPY_SUFFIX}"))
            .unwrap();
        let vars = ovmf_vars_copy(dir.path()).unwrap();
        Rig { dir, esp, vars }
    }

    fn start(&self, disk_read_only: bool) -> Qemu {
        let config = MachineConfig::new("qemu-system-x86_64", "q35")
            .drive(DriveBus::Pflash { unit: 0 }, Path::new(OVMF_CODE_4M), true)
            .drive(DriveBus::Pflash { unit: 1 }, &self.vars, false)
            .drive(
                DriveBus::Virtio { id: "esp".into() },
                self.esp.path(),
                disk_read_only,
            );
        Qemu::start(&config, self.dir.path()).unwrap()
    }

    /// `grubenv` and its second copy as they are on the ESP now, in host files; returns
    /// the block's path.
    fn grubenv(&self) -> PathBuf {
        let dir = self.dir.path().join("read-back");
        std::fs::create_dir_all(&dir).unwrap();
        let block = dir.join("grubenv");
        std::fs::write(&block, self.esp.read(GRUBENV).unwrap()).unwrap();
        let second = self
            .esp
            .read(&format!("{GRUBENV}{SECOND_COPY_SUFFIX}"))
            .unwrap();
        std::fs::write(dir.join(format!("grubenv{SECOND_COPY_SUFFIX}")), second).unwrap();
        block
    }

    /// The boot state on the ESP now, as our store reads it.
    fn state(&self) -> BootState {
        GrubEnvStore::new(FileMedium::open(self.grubenv()).unwrap())
            .load()
            .unwrap()
    }

    /// The variables on the ESP now, as the real `grub-editenv` lists them.
    fn grub_editenv(&self) -> Vars {
        need_tool("grub-editenv", "grub-common").unwrap();
        let out = run_tool(Command::new("grub-editenv").arg(self.grubenv()).arg("list")).unwrap();
        let mut vars = Vars::default();
        for line in String::from_utf8(out).unwrap().lines() {
            let (n, v) = line.split_once('=').unwrap();
            vars.set(n, v);
        }
        vars
    }
}

/// Waits for the next slot's marker; returns the slot and what was printed before it.
fn next_boot(qemu: &mut Qemu, slots: &[SlotName]) -> (String, String) {
    let markers: Vec<String> = slots.iter().map(|s| format!("SKERRY-BOOT-{s}")).collect();
    let needles: Vec<&str> = markers.iter().map(String::as_str).collect();
    let (i, console) = qemu.console().expect_any(&needles, BOOT).unwrap();
    (slots[i].to_string(), console)
}

fn reset(qemu: &mut Qemu) {
    qemu.qmp().system_reset().unwrap();
    qemu.qmp()
        .wait_event("RESET", Duration::from_secs(10))
        .unwrap();
}

#[test]
fn a_trial_counts_down_on_the_esp_and_rolls_back() {
    let slots = names(&["A", "B"]);
    let seed = BootState::new(&slots, 2).unwrap();
    let mut model = seed.clone();
    model.begin_trial(&slots[1]).unwrap();
    let rig = Rig::new(&seed, &model);
    let mut qemu = rig.start(false);
    let mut booted = Vec::new();
    // Two attempts of B (never marked good), then A, twice, with nothing left to save.
    for _ in 0..4 {
        let expected = model.power_on().unwrap();
        let (slot, console) = next_boot(&mut qemu, &slots);
        assert_eq!(slot, expected.as_str(), "console:\n{console}");
        assert!(
            !console.contains("saving the environment failed"),
            "{console}"
        );
        assert_eq!(
            rig.state(),
            model,
            "grubenv after booting {slot}:\n{console}"
        );
        booted.push(slot);
        reset(&mut qemu);
    }
    assert_eq!(booted, ["B", "B", "A", "A"]);
    qemu.quit().unwrap();

    // The real tool reads what GRUB wrote, with RAUC's meaning.
    let mut committed = Vars::default();
    mapping::write_state(&mut committed, &model);
    let listed = rig.grub_editenv();
    for slot in &slots {
        for var in [
            mapping::ok_var(slot.as_str()),
            mapping::try_var(slot.as_str()),
        ] {
            assert_eq!(
                listed.get(&var),
                committed.get(&var),
                "{var} per grub-editenv"
            );
        }
    }
}

#[test]
fn a_failed_save_starts_the_good_slot_at_every_power_on() {
    let slots = names(&["A", "B"]);
    let seed = BootState::new(&slots, 2).unwrap();
    let mut trial = seed.clone();
    trial.begin_trial(&slots[1]).unwrap();
    let rig = Rig::new(&seed, &trial);
    let mut qemu = rig.start(true);
    for _ in 0..2 {
        let (slot, console) = next_boot(&mut qemu, &slots);
        assert!(
            console.contains("failure writing sector"),
            "save_env did not fail:\n{console}"
        );
        assert!(
            console.contains(&format!("{SAVE_FAILED} A instead of B")),
            "console:\n{console}"
        );
        assert_eq!(slot, "A", "console:\n{console}");
        assert_eq!(rig.state(), trial, "a read-only disk changed");
        reset(&mut qemu);
    }
    qemu.quit().unwrap();
}
