//! A torn GRUB environment block in real GRUB (`grub-emu`): when a power cut leaves the
//! block's first sector from one rewrite and its last from another, the generated
//! fragment sees head and tail generations differ, loads the second copy beside the
//! block, and starts the slot that copy says; and every save moves the generation on.

use std::path::Path;
use std::process::{Command, Stdio};

use skerry_boot_state::grub::{grub_cfg, GrubEnvStore};
use skerry_boot_state::{BootState, BootStore, FileMedium, SlotName};

mod support {
    pub mod tools;
}

use support::tools::need;

fn name(s: &str) -> SlotName {
    SlotName::new(s).unwrap()
}

/// Runs the fragment (with `save_env` replaced by an `echo`) and returns the lines it
/// printed.
fn run_grub(dir: &Path, fragment: &str) -> String {
    let env = dir.join("grubenv").display().to_string();
    let mut cfg = String::from("set pager=0\n");
    cfg.push_str(&fragment.replace(&format!("save_env -f {env} "), "echo SKERRY_SAVED: "));
    cfg.push_str("echo \"SKERRY_BOOTED=$skerry_slot\"\n");
    cfg.push_str("echo \"GEN=$SKERRY_GEN_HEAD/$SKERRY_GEN_TAIL\"\n");
    cfg.push_str("halt\n");
    std::fs::write(dir.join("grub.cfg"), cfg).unwrap();
    let out = Command::new("grub-emu")
        .arg("-r")
        .arg("host")
        .arg("-d")
        .arg(dir)
        .stdin(Stdio::null())
        .output()
        .expect("start grub-emu");
    String::from_utf8_lossy(&out.stdout).replace('\r', "\n")
}

fn field<'a>(text: &'a str, key: &str) -> &'a str {
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .unwrap_or_else(|| panic!("no {key} in grub-emu output:\n{text}"))
}

#[test]
fn real_grub_loads_the_second_copy_of_a_torn_block() {
    need("grub-emu", "grub-emu");
    let dir = tempfile::tempdir().unwrap();
    let env = dir.path().join("grubenv");
    let slots = [name("A"), name("B")];
    let good = BootState::new(&slots, 3).unwrap();
    let mut trial = good.clone();
    trial.begin_trial(&slots[1]).unwrap();
    let fragment = grub_cfg(&good, Some(&env.display().to_string()));

    let mut store = GrubEnvStore::new(FileMedium::create(&env));
    store.commit(&good).unwrap();
    let old_block = std::fs::read(&env).unwrap();
    store.commit(&trial).unwrap();

    // Whole: B is on trial, and the save moves the generation on.
    let whole = run_grub(dir.path(), &fragment);
    assert_eq!(field(&whole, "SKERRY_BOOTED="), "B", "{whole}");
    let (head, tail) = field(&whole, "GEN=").split_once('/').unwrap();
    assert_eq!(head, tail);
    let stored = store.variables().unwrap();
    assert_ne!(Some(Ok(head)), stored.get("SKERRY_GEN_HEAD"), "{whole}");
    assert!(!whole.contains("torn"), "{whole}");

    // Torn: the first sector says A is good and alone, the last is the old one. GRUB
    // must see it and take the second copy (B on trial), not the torn block's mix.
    let mut torn = std::fs::read(&env).unwrap();
    torn[..512].copy_from_slice(&old_block[..512]);
    std::fs::write(&env, &torn).unwrap();
    let text = run_grub(dir.path(), &fragment);
    assert!(text.contains("the environment block is torn"), "{text}");
    assert_eq!(field(&text, "SKERRY_BOOTED="), "B", "{text}");
}
