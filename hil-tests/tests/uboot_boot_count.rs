//! The generated boot script in real U-Boot: Debian's `qemu_arm64` U-Boot on QEMU's
//! arm64 `virt` machine keeps its environment in the second flash bank, runs our
//! script (`mkimage`-wrapped, put in RAM by QEMU's loader, started by `bootcmd`), and
//! each slot's "kernel" is a marker on the console. Between boots the test reads the
//! flash from the host, with our U-Boot store and with `fw_printenv`, and resets the
//! machine over QMP.
//!
//! - Saving works: a trial's attempts go down by one per boot and are on the flash
//!   before the next reset; after its last attempt the good slot starts again.
//! - Saving fails (the flash drive is read-only, so U-Boot's `saveenv` reports "Flash
//!   not Erased"): the good slot starts and the console says why, at every power-on.
//! - From many states, one boot does what the model's power-on does, on the flash.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use skerry_boot_state::uboot::vars::Vars;
use skerry_boot_state::uboot::{boot_script, env, mapping, UbootEnvStore, UbootLayout};
use skerry_boot_state::{BootState, BootStore, FileMedium, SlotName};
use skerry_hil::qemu::files::{need_file, need_tool, run_tool, UBOOT_QEMU_ARM64, VIRT_FLASH_BANK};
use skerry_hil::qemu::{DriveBus, MachineConfig, Qemu};

/// Where QEMU's loader puts the wrapped script, and `bootcmd` sources it from.
const SCRIPT_ADDR: &str = "0x40200000";
/// Where `qemu_arm64` keeps its environment: offset 0 of flash bank 1, 256 KiB.
const LAYOUT: UbootLayout = UbootLayout {
    offset: 0,
    size: 0x40000,
    redundant: false,
};
/// One U-Boot power-on to its prompt takes 1–2 s under TCG; this is for a loaded machine.
const BOOT: Duration = Duration::from_secs(60);
const BOOTED: &str = "SKERRY-BOOT-";
const SAVE_FAILED: &str = "saving the environment failed; starting known-good slot";

fn names(list: &[&str]) -> Vec<SlotName> {
    list.iter().map(|n| SlotName::new(n).unwrap()).collect()
}

/// A scratch directory with the wrapped script and a flash bank holding `state`.
struct Rig {
    dir: tempfile::TempDir,
    script: PathBuf,
    flash: PathBuf,
}

impl Rig {
    fn new(seed: &BootState, state: Option<&BootState>) -> Rig {
        need_tool("mkimage", "u-boot-tools").unwrap();
        need_file(UBOOT_QEMU_ARM64, "u-boot-qemu").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let cmd = dir.path().join("boot.cmd");
        let script = dir.path().join("boot.scr");
        // Each slot's "kernel": a marker, then back to U-Boot's prompt for the next reset.
        std::fs::write(
            &cmd,
            boot_script(seed, &format!("echo \"{BOOTED}${{skerry_slot}}\"")),
        )
        .unwrap();
        run_tool(
            Command::new("mkimage")
                .args(["-A", "arm64", "-T", "script", "-C", "none", "-d"])
                .arg(&cmd)
                .arg(&script),
        )
        .unwrap();
        let flash = dir.path().join("flash1.img");
        let mut base = Vars::default();
        base.set("bootdelay", "0");
        base.set("bootcmd", &format!("source {SCRIPT_ADDR}"));
        std::fs::write(&flash, env::encode(&base, LAYOUT.size, None).unwrap()).unwrap();
        // The rest of the 64 MiB bank stays a hole (reads as zeros).
        std::fs::OpenOptions::new()
            .write(true)
            .open(&flash)
            .unwrap()
            .set_len(VIRT_FLASH_BANK)
            .unwrap();
        if let Some(state) = state {
            store(&flash).commit(state).unwrap();
        }
        Rig { dir, script, flash }
    }

    fn start(&self, flash_read_only: bool) -> Qemu {
        let config = MachineConfig::new("qemu-system-aarch64", "virt")
            .cpu("cortex-a57")
            .bios(Path::new(UBOOT_QEMU_ARM64))
            .drive(DriveBus::Pflash { unit: 1 }, &self.flash, flash_read_only)
            .device(&format!(
                "loader,file={},addr={SCRIPT_ADDR},force-raw=on",
                self.script.display()
            ));
        Qemu::start(&config, self.dir.path()).unwrap()
    }

    /// The boot state on the flash now, as our store reads it.
    fn state(&self) -> BootState {
        store(&self.flash).load().unwrap()
    }

    /// `name=value` of `vars` on the flash now, as the real `fw_printenv` reads it.
    fn fw_printenv(&self, vars: &[String]) -> Vars {
        need_tool("fw_printenv", "libubootenv-tool").unwrap();
        let config = self.dir.path().join("fw_env.config");
        std::fs::write(
            &config,
            format!(
                "{} 0x0 {:#x} {:#x}\n",
                self.flash.display(),
                LAYOUT.size,
                LAYOUT.size
            ),
        )
        .unwrap();
        let out = run_tool(
            Command::new("fw_printenv")
                .arg("-c")
                .arg(&config)
                .args(vars),
        )
        .unwrap();
        let mut parsed = Vars::default();
        for line in String::from_utf8(out).unwrap().lines() {
            let (n, v) = line.split_once('=').unwrap();
            parsed.set(n, v);
        }
        parsed
    }
}

fn store(flash: &Path) -> UbootEnvStore<FileMedium> {
    UbootEnvStore::new(FileMedium::open(flash).unwrap(), LAYOUT)
}

/// Waits for the next slot marker and U-Boot's prompt after it; returns the slot and
/// everything printed since the previous boot.
fn next_boot(qemu: &mut Qemu) -> (String, String) {
    let console = qemu.console();
    let before = console.expect(BOOTED, BOOT).unwrap();
    let slot = console.expect("\n", Duration::from_secs(10)).unwrap();
    console.expect("=> ", Duration::from_secs(10)).unwrap();
    (slot.trim().to_owned(), before)
}

fn reset(qemu: &mut Qemu) {
    qemu.qmp().system_reset().unwrap();
    qemu.qmp()
        .wait_event("RESET", Duration::from_secs(10))
        .unwrap();
}

#[test]
fn a_trial_counts_down_on_the_flash_and_rolls_back() {
    let slots = names(&["A", "B"]);
    let seed = BootState::new(&slots, 3).unwrap();
    let mut model = seed.clone();
    model.begin_trial(&slots[1]).unwrap();
    let rig = Rig::new(&seed, Some(&model));
    let mut qemu = rig.start(false);
    let mut booted = Vec::new();
    // Three attempts of B (never marked good), then A, twice, with nothing left to save.
    for _ in 0..5 {
        let expected = model.power_on().unwrap();
        let (slot, console) = next_boot(&mut qemu);
        assert_eq!(slot, expected.as_str(), "console:\n{console}");
        assert!(
            !console.contains("saving the environment failed"),
            "{console}"
        );
        assert_eq!(
            rig.state(),
            model,
            "the flash after booting {slot}:\n{console}"
        );
        booted.push(slot);
        reset(&mut qemu);
    }
    assert_eq!(booted, ["B", "B", "B", "A", "A"]);
    qemu.quit().unwrap();

    // The real tool reads what U-Boot wrote, as RAUC would.
    let mut wanted = vec!["BOOT_ORDER".to_owned()];
    wanted.extend(slots.iter().map(|s| mapping::left_var(s.as_str())));
    let mut committed = Vars::default();
    mapping::write_state(&mut committed, &model);
    let on_flash = rig.fw_printenv(&wanted);
    for var in &wanted {
        assert_eq!(
            on_flash.get(var),
            committed.get(var),
            "{var} per fw_printenv"
        );
    }
}

#[test]
fn a_failed_save_starts_the_good_slot_at_every_power_on() {
    let slots = names(&["A", "B"]);
    let seed = BootState::new(&slots, 3).unwrap();
    let mut trial = seed.clone();
    trial.begin_trial(&slots[1]).unwrap();
    let rig = Rig::new(&seed, Some(&trial));
    let mut qemu = rig.start(true);
    for _ in 0..2 {
        let (slot, console) = next_boot(&mut qemu);
        assert!(
            console.contains("Flash not Erased"),
            "saveenv did not fail:\n{console}"
        );
        assert!(
            console.contains(&format!("{SAVE_FAILED} A instead of B")),
            "console:\n{console}"
        );
        assert_eq!(slot, "A", "console:\n{console}");
        assert_eq!(rig.state(), trial, "a read-only flash changed");
        reset(&mut qemu);
    }
    qemu.quit().unwrap();
}

#[test]
fn one_boot_does_what_the_model_does_from_many_states() {
    let slots = names(&["A", "B"]);
    let (a, b) = (&slots[0], &slots[1]);
    let seed = BootState::new(&slots, 3).unwrap();
    // Good slot first; a fresh trial; a trial on its last attempt; a trial with none left
    // (given up); a bad slot in front of a good one; a trial of 15 attempts.
    let mut states = vec![seed.clone()];
    let mut trial = seed.clone();
    trial.begin_trial(b).unwrap();
    states.push(trial.clone());
    trial.power_on().unwrap();
    trial.power_on().unwrap();
    states.push(trial.clone());
    trial.power_on().unwrap();
    states.push(trial.clone());
    let mut bad_first = seed.clone();
    bad_first.begin_trial(b).unwrap();
    bad_first.mark_good(b).unwrap();
    bad_first.begin_trial(a).unwrap();
    bad_first.mark_bad(a).unwrap();
    states
        .push(BootState::from_parts(bad_first.slots().iter().rev().cloned().collect(), 3).unwrap());
    let mut long = BootState::new(&slots, 15).unwrap();
    long.begin_trial(b).unwrap();
    states.push(long);

    for state in &states {
        let rig = Rig::new(&seed, Some(state));
        let mut qemu = rig.start(false);
        let (slot, console) = next_boot(&mut qemu);
        qemu.quit().unwrap();
        let mut model = state.clone();
        let expected = model.power_on().unwrap();
        assert_eq!(slot, expected.as_str(), "from {state:?}:\n{console}");
        assert_eq!(
            console.contains("Saving Environment"),
            model != *state,
            "saved exactly when the state changed, from {state:?}:\n{console}"
        );
        assert_eq!(rig.state(), model, "the flash, from {state:?}");
    }

    // No boot state at all: the first slot starts and nothing is written.
    let rig = Rig::new(&seed, None);
    let mut qemu = rig.start(false);
    let (slot, console) = next_boot(&mut qemu);
    qemu.quit().unwrap();
    assert_eq!(slot, "A");
    assert!(!console.contains("Saving Environment"), "{console}");
}
