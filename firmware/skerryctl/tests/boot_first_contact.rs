//! `skerryctl boot …` as a new user meets it: `init` does not overwrite a working state
//! without `--force`, picks the tries the bootloader can count, `mark-good` of the good
//! slot ends a trial instead of stranding it, and the help says which commands write.

mod support {
    pub mod cli;
    pub mod refused;
}

use std::path::Path;

use support::cli::ok;
use support::refused::fails;

fn status(store: &str) -> serde_json::Value {
    serde_json::from_str(&ok(&[
        "boot", "status", "--store", store, "--output", "json",
    ]))
    .unwrap()
}

fn tryboot(dir: &Path) -> String {
    std::fs::create_dir(dir.join("boot")).unwrap();
    format!("tryboot:{}/boot,A=2,B=3", dir.display())
}

#[test]
fn init_over_a_valid_state_needs_force() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("grub:{}/grubenv", dir.path().display());
    ok(&["boot", "init", "--store", &store]);
    ok(&["boot", "begin-trial", "B", "--store", &store]);
    let before = std::fs::read(dir.path().join("grubenv")).unwrap();
    let err = fails(&["boot", "init", "--store", &store], "--force");
    assert!(err.contains("already holds a valid boot state"), "{err}");
    assert_eq!(std::fs::read(dir.path().join("grubenv")).unwrap(), before);
    ok(&["boot", "init", "--store", &store, "--force"]);
    assert_eq!(status(&store)["slots"][1]["status"], "bad");
}

#[test]
fn init_on_tryboot_takes_the_one_try_the_firmware_counts() {
    let dir = tempfile::tempdir().unwrap();
    let store = tryboot(dir.path());
    let err = fails(
        &["boot", "init", "--store", &store, "--tries", "3"],
        "--tries 3",
    );
    assert!(err.contains("at most 1 attempt"), "{err}");
    ok(&["boot", "init", "--store", &store]);
    assert_eq!(status(&store)["tries"], 1);
}

#[test]
fn mark_good_of_the_running_good_slot_ends_the_trial() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("uboot:{}/env,redundant", dir.path().display());
    ok(&["boot", "init", "--store", &store]);
    ok(&["boot", "begin-trial", "B", "--store", &store]);
    let text = ok(&["boot", "mark-good", "A", "--store", &store]);
    assert!(text.contains("trial of slot B is over"), "{text}");
    let s = status(&store);
    assert_eq!(s["order"], serde_json::json!(["A", "B"]));
    assert_eq!(s["slots"][1]["status"], "bad");
    // Not stranded: the next release's trial can begin.
    ok(&["boot", "begin-trial", "B", "--store", &store]);
    let json: serde_json::Value = serde_json::from_str(&ok(&[
        "boot",
        "mark-good",
        "A",
        "--store",
        &store,
        "--output",
        "json",
    ]))
    .unwrap();
    assert_eq!(json["ended_trial"], "B");
}

#[test]
fn help_says_which_commands_write() {
    let boot = ok(&["boot", "--help"]);
    for (command, says) in [
        ("init", "writes the store"),
        ("begin-trial", "writes the store"),
        ("mark-good", "writes the store"),
        ("mark-bad", "writes the store"),
        ("simulate-boot", "writes the"),
        ("status", "only reads"),
    ] {
        let line = boot
            .lines()
            .find(|l| l.trim_start().starts_with(command))
            .unwrap_or_else(|| panic!("no {command} in: {boot}"));
        let help = ok(&["boot", command, "--help"]);
        assert!(
            help.contains(says) || line.contains(says),
            "boot {command}: {help}"
        );
    }
    let top = ok(&["--help"]);
    assert!(top.contains("Commands that write"), "{top}");
}
