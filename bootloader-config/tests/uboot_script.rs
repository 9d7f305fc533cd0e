//! The generated U-Boot boot script: `mkimage` wraps it, and run under a POSIX shell
//! with `setenv`/`saveenv` stand-ins (U-Boot's hush is a subset of that syntax) it picks
//! the same slot and saves the same state as the model's power-on, for many states.

use std::path::Path;
use std::process::Command;

use skerry_boot_state::uboot::boot_script;
use skerry_boot_state::uboot::mapping::{self, left_var, trial_var};
use skerry_boot_state::uboot::vars::Vars;
use skerry_boot_state::{BootState, SlotStatus};

mod support {
    pub mod model_check;
    pub mod shell;
    pub mod states;
    pub mod tools;
}

use support::model_check::{names, unsaved_choice, RaucView};
use support::shell::{run_in_sh, ShellBoot};
use support::states::reachable_states;
use support::tools::need;

const PRELUDE: &str = r#"
setenv() { if [ $# -ge 2 ]; then eval "$1=\"\$2\""; else unset "$1"; fi; }
saveenv() { echo SAVED; for v in $SKERRY_DUMP; do eval "if [ -n \"\${$v+x}\" ]; then echo \"$v=\$$v\"; fi"; done; }
"#;

/// Runs `script` on `env`; the `saveenv` stand-in prints the variables in `dump`.
fn run_script(script: &str, env: &Vars, dump: &[String]) -> ShellBoot {
    let prelude = format!("{PRELUDE}SKERRY_DUMP='{}'\n", dump.join(" "));
    ShellBoot::parse(&run_in_sh(&prelude, env, script))
}

/// RAUC reads only `BOOT_ORDER` and `BOOT_<slot>_LEFT`.
const RAUC_VIEW: RaucView = RaucView {
    write_state: mapping::write_state,
    fixed: &["BOOT_ORDER"],
    per_slot: &[left_var],
};

#[test]
fn script_decides_like_the_model() {
    let slots = names(&["A", "B", "C"]);
    let seed = BootState::new(&slots, 15).unwrap();
    let script = boot_script(&seed, "echo \"BOOT=${skerry_slot}\"");
    let mut dump: Vec<String> = vec!["BOOT_ORDER".into(), "SKERRY_TRIES".into()];
    for s in &slots {
        dump.push(left_var(s.as_str()));
        dump.push(trial_var(s.as_str()));
    }
    let mut trial_counts = std::collections::BTreeSet::new();
    for tries in [1, 3, 15] {
        for state in reachable_states(&slots, tries, 60, 0x9e37_79b9_7f4a_7c15) {
            for s in state.slots() {
                if let SlotStatus::Trial { tries_left } = s.status {
                    trial_counts.insert(tries_left);
                }
            }
            let mut env = Vars::default();
            mapping::write_state(&mut env, &state);
            let outcome = run_script(&script, &env, &dump);
            let mut model = state.clone();
            let expected = model.power_on().unwrap();
            assert_eq!(outcome.booted, expected.as_str(), "from {state:?}");
            match outcome.saved {
                Some(saved) => {
                    assert_eq!(mapping::read_state(&saved).unwrap(), model);
                    RAUC_VIEW.assert_matches(&saved, &model);
                }
                None => assert_eq!(model, state, "state changed but the script did not save"),
            }
        }
    }
    assert!(
        trial_counts.len() > 8,
        "too few trial counts covered: {trial_counts:?}"
    );
}

/// `saveenv` that fails, as U-Boot's does on a write-protected flash.
const FAILING_SAVE: &str = r#"
setenv() { if [ $# -ge 2 ]; then eval "$1=\"\$2\""; else unset "$1"; fi; }
saveenv() { echo SAVED; return 1; }
"#;

#[test]
fn script_starts_a_good_slot_when_the_save_fails() {
    let slots = names(&["A", "B", "C"]);
    let script = boot_script(
        &BootState::new(&slots, 15).unwrap(),
        "echo \"BOOT=${skerry_slot}\"",
    );
    let mut fell_back = 0;
    for tries in [1, 3, 15] {
        for state in reachable_states(&slots, tries, 60, 0x9e37_79b9_7f4a_7c15) {
            let mut env = Vars::default();
            mapping::write_state(&mut env, &state);
            let stdout = run_in_sh(FAILING_SAVE, &env, &script);
            let expected = unsaved_choice(&state);
            assert_eq!(
                ShellBoot::parse(&stdout).booted,
                expected,
                "from {state:?}:\n{stdout}"
            );
            let counted = state.clone().power_on().unwrap();
            if counted.as_str() != expected {
                assert!(
                    stdout.contains(&format!(
                        "saving the environment failed; starting known-good slot {expected} instead of {counted}"
                    )),
                    "{stdout}"
                );
                fell_back += 1;
            }
        }
    }
    assert!(fell_back > 10, "only {fell_back} states fell back");
}

#[test]
fn script_without_state_starts_the_fallback_and_writes_nothing() {
    let seed = BootState::new(&names(&["A", "B"]), 3).unwrap();
    let script = boot_script(&seed, "echo \"BOOT=${skerry_slot}\"");
    let outcome = run_script(&script, &Vars::default(), &[]);
    assert_eq!(outcome.booted, "A");
    assert!(outcome.saved.is_none());
}

#[test]
fn mkimage_wraps_the_script() {
    need("mkimage", "u-boot-tools");
    let dir = tempfile::tempdir().unwrap();
    let seed = BootState::new(&names(&["A", "B"]), 3).unwrap();
    let cmd = dir.path().join("boot.cmd");
    let scr = dir.path().join("boot.scr");
    std::fs::write(
        &cmd,
        boot_script(
            &seed,
            "setenv bootargs \"${bootargs} rauc.slot=${skerry_slot}\"",
        ),
    )
    .unwrap();
    let out = Command::new("mkimage")
        .args(["-A", "arm64", "-T", "script", "-C", "none", "-n", "skerry"])
        .arg("-d")
        .arg(&cmd)
        .arg(&scr)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(listing.contains("Script"), "{listing}");
    let image = std::fs::read(&scr).unwrap();
    assert_eq!(&image[..4], &[0x27, 0x05, 0x19, 0x56], "legacy image magic");
    let body = std::fs::read(&cmd).unwrap();
    assert!(image.windows(body.len()).any(|w| w == body.as_slice()));
    assert!(Path::new(&scr).exists());
}
