//! Interop with the real U-Boot tools, both directions: `fw_printenv`/`fw_setenv`
//! (libubootenv-tool) and `mkenvimage` (u-boot-tools), single and redundant, including a
//! redundant environment whose newest copy is corrupt and a flag that wraps 255 → 0.

use std::path::{Path, PathBuf};
use std::process::Command;

use skerry_boot_state::uboot::{UbootEnvStore, UbootLayout};
use skerry_boot_state::{BootState, BootStore, FileMedium, SlotName, SlotStatus};

mod support {
    pub mod tools;
}

use support::tools::need;

const SIZE: usize = 0x4000;

fn a() -> SlotName {
    SlotName::new("A").unwrap()
}

fn b() -> SlotName {
    SlotName::new("B").unwrap()
}

/// A scratch directory with an env file, its `fw_env.config` and an empty default env.
struct Rig {
    _dir: tempfile::TempDir,
    env: PathBuf,
    config: PathBuf,
    defenv: PathBuf,
    layout: UbootLayout,
}

impl Rig {
    fn new(layout: UbootLayout) -> Rig {
        need("fw_printenv", "libubootenv-tool");
        let dir = tempfile::tempdir().unwrap();
        let env = dir.path().join("env.img");
        let config = dir.path().join("fw_env.config");
        let defenv = dir.path().join("defenv");
        let mut lines = format!(
            "{} {:#x} {:#x}\n",
            env.display(),
            layout.offset,
            layout.size
        );
        if layout.redundant {
            lines.push_str(&format!(
                "{} {:#x} {:#x}\n",
                env.display(),
                layout.offset + layout.size as u64,
                layout.size
            ));
        }
        std::fs::write(&config, lines).unwrap();
        std::fs::write(&defenv, "").unwrap();
        Rig {
            _dir: dir,
            env,
            config,
            defenv,
            layout,
        }
    }

    fn store(&self) -> UbootEnvStore<FileMedium> {
        UbootEnvStore::new(FileMedium::create(&self.env), self.layout)
    }

    fn tool(&self, tool: &str, args: &[&str]) -> String {
        let out = Command::new(tool)
            .arg("-c")
            .arg(&self.config)
            .arg("-f")
            .arg(&self.defenv)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("running {tool}: {e}"));
        assert!(
            out.status.success(),
            "{tool} {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn printenv(&self) -> Vec<String> {
        self.tool("fw_printenv", &[])
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn setenv(&self, name: &str, value: &str) {
        self.tool("fw_setenv", &[name, value]);
    }
}

fn has(lines: &[String], line: &str) {
    assert!(lines.iter().any(|l| l == line), "{line:?} not in {lines:?}");
}

fn trial_of_b() -> BootState {
    let mut s = BootState::new(&[a(), b()], 3).unwrap();
    s.begin_trial(&b()).unwrap();
    s
}

#[test]
fn fw_printenv_reads_our_single_env() {
    let rig = Rig::new(UbootLayout::default());
    rig.store().commit(&trial_of_b()).unwrap();
    let lines = rig.printenv();
    for line in [
        "BOOT_ORDER=B A",
        "BOOT_B_LEFT=3",
        "BOOT_A_LEFT=3",
        "SKERRY_B_TRIAL=1",
        "SKERRY_TRIES=3",
    ] {
        has(&lines, line);
    }
}

#[test]
fn fw_setenv_values_are_loaded_and_its_variables_kept() {
    let rig = Rig::new(UbootLayout::default());
    let mut store = rig.store();
    store
        .commit(&BootState::new(&[a(), b()], 3).unwrap())
        .unwrap();
    // RAUC's mark-good of B and a new order, written by the real tool.
    rig.setenv("BOOT_B_LEFT", "3");
    rig.setenv("BOOT_ORDER", "B A");
    rig.setenv("bootcmd", "run distro_bootcmd; echo \"done\"");
    let state = store.load().unwrap();
    assert_eq!(state.order().cloned().collect::<Vec<_>>(), vec![b(), a()]);
    assert_eq!(state.status(&b()).unwrap(), SlotStatus::Good);
    let mut next = state.clone();
    next.mark_bad(&a()).unwrap();
    store.commit(&next).unwrap();
    let lines = rig.printenv();
    has(&lines, "bootcmd=run distro_bootcmd; echo \"done\"");
    has(&lines, "BOOT_A_LEFT=0");
    has(&lines, "BOOT_ORDER=B A");
}

#[test]
fn mkenvimage_rauc_env_loads_with_rauc_meaning() {
    need("mkenvimage", "u-boot-tools");
    let rig = Rig::new(UbootLayout::default());
    let vars = rig.env.with_extension("txt");
    std::fs::write(
        &vars,
        "bootcmd=run rauc_boot\nBOOT_ORDER=A B\nBOOT_A_LEFT=3\nBOOT_B_LEFT=0\n",
    )
    .unwrap();
    mkenvimage(&["-s", "0x4000", "-o"], &rig.env, &vars);
    let mut store = rig.store();
    let state = store.load().unwrap();
    assert_eq!(state, BootState::new(&[a(), b()], 3).unwrap());
    let mut next = state;
    next.begin_trial(&b()).unwrap();
    store.commit(&next).unwrap();
    let lines = rig.printenv();
    has(&lines, "bootcmd=run rauc_boot");
    has(&lines, "SKERRY_B_TRIAL=1");
}

fn mkenvimage(args: &[&str], out: &Path, input: &Path) {
    let status = Command::new("mkenvimage")
        .args(args)
        .arg(out)
        .arg(input)
        .status()
        .unwrap();
    assert!(status.success(), "mkenvimage {args:?} failed");
}

fn redundant_rig() -> Rig {
    Rig::new(UbootLayout {
        offset: 0x10000,
        size: SIZE,
        redundant: true,
    })
}

#[test]
fn redundant_env_alternates_with_fw_setenv() {
    let rig = redundant_rig();
    let mut store = rig.store();
    store
        .commit(&BootState::new(&[a(), b()], 3).unwrap())
        .unwrap();
    has(&rig.printenv(), "BOOT_ORDER=A B");
    // fw_setenv writes the other copy with the next flag; we must read that one.
    rig.setenv("BOOT_B_LEFT", "2");
    rig.setenv("SKERRY_B_TRIAL", "1");
    assert_eq!(
        store.load().unwrap().status(&b()).unwrap(),
        SlotStatus::Trial { tries_left: 2 }
    );
    // And our next write is what fw_printenv reads.
    let mut next = store.load().unwrap();
    next.mark_good(&b()).unwrap();
    store.commit(&next).unwrap();
    let lines = rig.printenv();
    has(&lines, "BOOT_ORDER=B A");
    assert!(
        !lines.iter().any(|l| l.starts_with("SKERRY_B_TRIAL")),
        "{lines:?}"
    );
    assert_eq!(store.load().unwrap(), next);
}

#[test]
fn corrupt_newest_copy_falls_back_for_us_and_fw_printenv() {
    let rig = redundant_rig();
    let mut store = rig.store();
    let old = BootState::new(&[a(), b()], 3).unwrap();
    store.commit(&old).unwrap();
    store.commit(&trial_of_b()).unwrap();
    has(&rig.printenv(), "BOOT_ORDER=B A");
    // Copy 2 holds the newest state; break one byte of its data.
    let mut bytes = std::fs::read(&rig.env).unwrap();
    let at = rig.layout.offset as usize + SIZE + 8;
    bytes[at] ^= 0x20;
    std::fs::write(&rig.env, &bytes).unwrap();
    assert_eq!(store.load().unwrap(), old);
    let lines = rig.printenv();
    has(&lines, "BOOT_ORDER=A B");
    has(&lines, "BOOT_B_LEFT=0");
    // The next commit replaces the corrupt copy, and both readers agree again.
    store.commit(&trial_of_b()).unwrap();
    has(&rig.printenv(), "BOOT_ORDER=B A");
}

#[test]
fn flag_wrap_from_255_to_0_agrees_with_fw_setenv() {
    let rig = redundant_rig();
    let mut store = rig.store();
    store
        .commit(&BootState::new(&[a(), b()], 3).unwrap())
        .unwrap();
    // The only valid copy (copy 1) gets flag 255; the flag is outside the CRC.
    let mut bytes = std::fs::read(&rig.env).unwrap();
    bytes[rig.layout.offset as usize + 4] = 255;
    std::fs::write(&rig.env, &bytes).unwrap();
    rig.setenv("BOOT_ORDER", "B A");
    let bytes = std::fs::read(&rig.env).unwrap();
    assert_eq!(
        bytes[rig.layout.offset as usize + SIZE + 4],
        0,
        "fw_setenv wrapped"
    );
    assert_eq!(store.load().unwrap().order().next(), Some(&b()));
    // Our next write goes over the flag-255 copy with flag 1, and fw_printenv reads it.
    let mut next = store.load().unwrap();
    next.mark_good(&a()).unwrap();
    store.commit(&next).unwrap();
    let bytes = std::fs::read(&rig.env).unwrap();
    assert_eq!(bytes[rig.layout.offset as usize + 4], 1);
    has(&rig.printenv(), "BOOT_ORDER=A B");
}
