//! The generated `grub.cfg` fragment: `grub-script-check` accepts it, and run under a
//! POSIX shell with `load_env`/`save_env` stand-ins (the fragment only uses syntax GRUB
//! and sh share) it picks the same slot and saves the same state as the model's
//! power-on, for many states.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use skerry_boot_state::grub::mapping::{self, left_var, ok_var, try_var};
use skerry_boot_state::grub::{envblk, grub_cfg};
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
load_env() { :; }
save_env() { echo SAVED; for v in "$@"; do eval "if [ -n \"\${$v+x}\" ]; then echo \"$v=\$$v\"; fi"; done; }
"#;

/// Runs the fragment on `env`: what it booted and saved, and the menu default it chose
/// (printed without `=` so it is never taken for a saved variable).
fn run_fragment(fragment: &str, env: &Vars) -> (ShellBoot, String) {
    let script = format!("{fragment}echo \"BOOT=$skerry_slot\"\necho \"DEFAULT $default\"\n");
    let stdout = run_in_sh(PRELUDE, env, &script);
    let default = stdout
        .lines()
        .find_map(|l| l.strip_prefix("DEFAULT "))
        .unwrap_or_default()
        .to_owned();
    (ShellBoot::parse(&stdout), default)
}

/// RAUC reads only `<slot>_OK` and `<slot>_TRY`.
const RAUC_VIEW: RaucView = RaucView {
    write_state: mapping::write_state,
    fixed: &[],
    per_slot: &[ok_var, try_var],
};

#[test]
fn fragment_decides_like_the_model() {
    let slots = names(&["A", "B", "C"]);
    let fragment = grub_cfg(&BootState::new(&slots, 15).unwrap(), None);
    let mut trial_counts = std::collections::BTreeSet::new();
    for tries in [1, 4, 15] {
        for state in reachable_states(&slots, tries, 60, 0x2545_f491_4f6c_dd1d) {
            for s in state.slots() {
                if let SlotStatus::Trial { tries_left } = s.status {
                    trial_counts.insert(tries_left);
                }
            }
            let mut env = Vars::default();
            mapping::write_state(&mut env, &state);
            let (outcome, default) = run_fragment(&fragment, &env);
            let mut model = state.clone();
            let expected = model.power_on().unwrap();
            assert_eq!(outcome.booted, expected.as_str(), "from {state:?}");
            assert_eq!(default, format!("skerry-{expected}"));
            match outcome.saved {
                Some(saved) => {
                    // save_env names only the per-slot variables; the rest is unchanged.
                    let mut after = env.clone();
                    for (n, v) in saved.iter() {
                        let n = std::str::from_utf8(n).unwrap();
                        after.set(n, std::str::from_utf8(v).unwrap());
                    }
                    assert_eq!(
                        mapping::read_state(&after).unwrap(),
                        model,
                        "from {state:?}"
                    );
                    // RAUC's view (OK/TRY) is exactly what a commit of the new state writes.
                    RAUC_VIEW.assert_matches(&after, &model);
                }
                None => assert_eq!(model, state, "state changed but the fragment did not save"),
            }
        }
    }
    assert!(
        trial_counts.len() > 8,
        "too few trial counts covered: {trial_counts:?}"
    );
}

#[test]
fn fragment_saves_only_slot_variables() {
    let slots = names(&["A", "B"]);
    let text = grub_cfg(&BootState::new(&slots, 3).unwrap(), Some("/grubenv"));
    let save_line = text.lines().find(|l| l.contains("save_env")).unwrap();
    // The save is checked: its failure decides which slot starts.
    let mut expected = vec!["if", "save_env", "-f", "/grubenv"];
    let vars: Vec<String> = slots
        .iter()
        .flat_map(|s| {
            [
                ok_var(s.as_str()),
                try_var(s.as_str()),
                left_var(s.as_str()),
            ]
        })
        .chain(
            // The block's generations, which every save moves on (a torn block tells).
            [envblk::GEN_HEAD, envblk::GEN_TAIL].map(str::to_owned),
        )
        .collect();
    let last = format!("{};", vars[vars.len() - 1]);
    expected.extend(vars[..vars.len() - 1].iter().map(String::as_str));
    expected.extend([last.as_str(), "then"]);
    assert_eq!(save_line.split_whitespace().collect::<Vec<_>>(), expected);
}

/// `save_env` that fails, as on a read-only or unwritable ESP.
const FAILING_SAVE: &str = r#"
load_env() { :; }
save_env() { echo SAVED; return 1; }
"#;

#[test]
fn fragment_starts_a_good_slot_when_the_save_fails() {
    let slots = names(&["A", "B", "C"]);
    let fragment = grub_cfg(&BootState::new(&slots, 15).unwrap(), None);
    let script = format!("{fragment}echo \"BOOT=$skerry_slot\"\necho \"DEFAULT $default\"\n");
    let mut fell_back = 0;
    for tries in [1, 4, 15] {
        for state in reachable_states(&slots, tries, 60, 0x2545_f491_4f6c_dd1d) {
            let mut env = Vars::default();
            mapping::write_state(&mut env, &state);
            let stdout = run_in_sh(FAILING_SAVE, &env, &script);
            let outcome = ShellBoot::parse(&stdout);
            let expected = unsaved_choice(&state);
            assert_eq!(outcome.booted, expected, "from {state:?}:\n{stdout}");
            assert!(stdout.contains(&format!("DEFAULT skerry-{expected}")));
            let mut model = state.clone();
            let counted = model.power_on().unwrap();
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
fn grub_script_check_accepts_the_fragment() {
    need("grub-script-check", "grub-common");
    let slots = names(&["A", "B"]);
    let mut cfg = grub_cfg(
        &BootState::new(&slots, 3).unwrap(),
        Some("${prefix}/grubenv"),
    );
    for s in &slots {
        cfg.push_str(&format!(
            "menuentry \"Slot {s}\" --id skerry-{s} {{\n  linux /vmlinuz-{s} rauc.slot=$skerry_slot\n}}\n"
        ));
    }
    let out = grub_script_check(cfg.as_bytes());
    assert!(
        out.status.success(),
        "grub-script-check refused the fragment: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // And it does refuse broken input, so the check means something.
    let out = grub_script_check(&cfg.as_bytes()[..cfg.len() / 2]);
    assert!(!out.status.success());
}

/// Runs `grub-script-check` on `script`.
fn grub_script_check(script: &[u8]) -> Output {
    let mut child = Command::new("grub-script-check")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(script).unwrap();
    child.wait_with_output().unwrap()
}
