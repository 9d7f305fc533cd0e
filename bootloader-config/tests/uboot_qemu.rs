//! The generated boot script in real U-Boot: Debian's `qemu_arm64` U-Boot under QEMU
//! (TCG) reads our environment from its flash, runs the script (`mkimage`-wrapped, put
//! in RAM by QEMU's loader, started by `bootcmd=source ...`), and prints the slot it
//! chose and the variables as it would save them. Both must match the model's power-on.
//!
//! Debian 12's QEMU 7.2 fails U-Boot's buffered flash write (`saveenv` reports a timeout;
//! QEMU from bookworm-backports does not), so the test reads the variables U-Boot holds
//! in memory when the boot commands run, which is exactly what `saveenv` writes, and
//! checks that U-Boot tried to save exactly when the model's state changed.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use skerry_boot_state::uboot::mapping::{self, left_var, trial_var};
use skerry_boot_state::uboot::vars::Vars;
use skerry_boot_state::uboot::{boot_script, env, UbootEnvStore, UbootLayout};
use skerry_boot_state::{BootState, BootStore, FileMedium, SlotName};

mod support {
    pub mod console;
    pub mod model_check;
    pub mod tools;
}

use support::console::{printed_vars, ConsoleBoot};
use support::model_check::{names, RaucView};
use support::tools::need;

const UBOOT_BIN: &str = "/usr/lib/u-boot/qemu_arm64/u-boot.bin";
const FLASH_SIZE: usize = 64 << 20;
const SCRIPT_ADDR: &str = "0x40200000";
/// Where `qemu_arm64` keeps its environment in the second flash bank.
const LAYOUT: UbootLayout = UbootLayout {
    offset: 0,
    size: 0x40000,
    redundant: false,
};

/// Flashes an environment holding `bootcmd` plus `state` (if any), boots U-Boot once and
/// reads what it did from the serial console.
fn boot_once(
    dir: &Path,
    script: &Path,
    slots: &[SlotName],
    state: Option<&BootState>,
) -> ConsoleBoot {
    let flash = dir.join("flash1.img");
    let mut base = Vars::default();
    base.set("bootdelay", "0");
    base.set("bootcmd", &format!("source {SCRIPT_ADDR}"));
    let mut image = env::encode(&base, LAYOUT.size, None).unwrap();
    image.resize(FLASH_SIZE, 0xFF);
    std::fs::write(&flash, image).unwrap();
    if let Some(state) = state {
        UbootEnvStore::new(FileMedium::open(&flash).unwrap(), LAYOUT)
            .commit(state)
            .unwrap();
    }
    let mut child = Command::new("qemu-system-aarch64")
        .args([
            "-M",
            "virt",
            "-cpu",
            "cortex-a57",
            "-m",
            "256",
            "-accel",
            "tcg",
        ])
        .args([
            "-nographic",
            "-nic",
            "none",
            "-no-reboot",
            "-bios",
            UBOOT_BIN,
        ])
        .arg("-drive")
        .arg(format!(
            "if=pflash,format=raw,index=1,file={}",
            flash.display()
        ))
        .arg("-device")
        .arg(format!(
            "loader,file={},addr={SCRIPT_ADDR},force-raw=on",
            script.display()
        ))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start qemu-system-aarch64");
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(60) {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("U-Boot did not power off within 60 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut serial = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut serial)
        .unwrap();
    let serial = serial.replace('\r', "");
    assert!(
        serial.contains("Loading Environment from Flash... OK"),
        "U-Boot did not accept our environment:\n{serial}"
    );
    let chosen = serial
        .lines()
        .find_map(|l| l.strip_prefix("SKERRY_BOOTED="))
        .unwrap_or_else(|| panic!("the script printed no choice:\n{serial}"))
        .to_owned();
    let mut wanted = vec!["BOOT_ORDER".to_owned(), "SKERRY_TRIES".to_owned()];
    for s in slots {
        wanted.push(left_var(s.as_str()));
        wanted.push(trial_var(s.as_str()));
    }
    ConsoleBoot {
        chosen,
        saved: serial.contains("Saving Environment"),
        vars: printed_vars(&serial, &wanted),
    }
}

fn printenv_commands(slots: &[SlotName]) -> String {
    let mut cmd =
        String::from("echo SKERRY_BOOTED=${skerry_slot}\nprintenv BOOT_ORDER SKERRY_TRIES");
    for s in slots {
        cmd.push_str(&format!(
            " {} {}",
            left_var(s.as_str()),
            trial_var(s.as_str())
        ));
    }
    cmd.push_str("\npoweroff");
    cmd
}

/// RAUC reads only `BOOT_ORDER` and `BOOT_<slot>_LEFT`.
const RAUC_VIEW: RaucView = RaucView {
    write_state: mapping::write_state,
    fixed: &["BOOT_ORDER"],
    per_slot: &[left_var],
};

#[test]
fn real_uboot_runs_the_script_like_the_model() {
    need("qemu-system-aarch64", "qemu-system-arm");
    need("mkimage", "u-boot-tools");
    assert!(
        Path::new(UBOOT_BIN).exists(),
        "{UBOOT_BIN} is missing: install the Debian package u-boot-qemu \
         (listed in scripts/deps/bootstate-uboot-grub.apt)"
    );
    let dir = tempfile::tempdir().unwrap();
    let slots = names(&["A", "B"]);
    let (a, b) = (&slots[0], &slots[1]);
    let seed = BootState::new(&slots, 3).unwrap();
    let cmd = dir.path().join("boot.cmd");
    let scr = dir.path().join("boot.scr");
    std::fs::write(&cmd, boot_script(&seed, &printenv_commands(&slots))).unwrap();
    let status = Command::new("mkimage")
        .args(["-A", "arm64", "-T", "script", "-C", "none", "-d"])
        .arg(&cmd)
        .arg(&scr)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "mkimage failed");

    // Good slot first; a fresh trial; a trial on its last attempt; a trial with none
    // left in front of the good slot (given up); a bad slot in front; 15 attempts.
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
    let bad_in_front = BootState::from_parts(
        bad_first.slots().iter().rev().cloned().collect(),
        bad_first.tries(),
    )
    .unwrap();
    states.push(bad_in_front.clone());
    let mut long = BootState::new(&slots, 15).unwrap();
    long.begin_trial(b).unwrap();
    states.push(long);

    for state in &states {
        let boot = boot_once(dir.path(), &scr, &slots, Some(state));
        boot.assert_like_model(state, mapping::read_state, &RAUC_VIEW);
    }

    // No boot state at all: the fallback slot starts and nothing is saved.
    let boot = boot_once(dir.path(), &scr, &slots, None);
    assert_eq!(boot.chosen, "A");
    assert!(!boot.saved);
}
