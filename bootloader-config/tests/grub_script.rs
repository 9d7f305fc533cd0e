//! The generated `grub.cfg` fragment: `grub-script-check` accepts it, and run under a
//! POSIX shell with `load_env`/`save_env` stand-ins (the fragment only uses syntax GRUB
//! and sh share) it picks the same slot and saves the same state as the model's
//! power-on, for many states.

use std::io::Write;
use std::process::{Command, Stdio};

use skerry_boot_state::grub::grub_cfg;
use skerry_boot_state::grub::mapping::{self, left_var, ok_var, try_var};
use skerry_boot_state::uboot::vars::Vars;
use skerry_boot_state::{BootState, SlotName, SlotStatus};

mod support {
    pub mod tools;
}

use support::tools::need;

fn names(list: &[&str]) -> Vec<SlotName> {
    list.iter().map(|n| SlotName::new(n).unwrap()).collect()
}

/// Distinct states reached by pseudo-random transitions.
fn reachable_states(slots: &[SlotName], tries: u8, count: usize) -> Vec<BootState> {
    let mut rng = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut state = BootState::new(slots, tries).unwrap();
    let mut seen = vec![state.clone()];
    for _ in 0..count * 20 {
        let slot = &slots[(next() % slots.len() as u64) as usize];
        let _ = match next() % 6 {
            0 => state.begin_trial(slot),
            1 => state.mark_good(slot),
            2 => state.mark_bad(slot),
            _ => state.power_on().map(|_| ()),
        };
        if !seen.contains(&state) {
            seen.push(state.clone());
        }
        if seen.len() == count {
            break;
        }
    }
    seen
}

const PRELUDE: &str = r#"
load_env() { :; }
save_env() { echo SAVED; for v in "$@"; do eval "if [ -n \"\${$v+x}\" ]; then echo \"$v=\$$v\"; fi"; done; }
"#;

struct Outcome {
    booted: String,
    default: String,
    saved: Option<Vars>,
}

fn run_fragment(fragment: &str, env: &Vars) -> Outcome {
    let mut text = String::from(PRELUDE);
    for (name, value) in env.iter() {
        let (name, value) = (
            String::from_utf8(name.to_vec()).unwrap(),
            String::from_utf8(value.to_vec()).unwrap(),
        );
        text.push_str(&format!("{name}='{value}'\n"));
    }
    text.push_str(fragment);
    text.push_str("echo \"BOOT=$skerry_slot\"\necho \"DEFAULT=$default\"\n");
    let out = Command::new("sh").args(["-c", &text]).output().unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "fragment failed: {stdout}");
    let (mut saved, mut booted, mut default) = (None, None, None);
    for line in stdout.lines() {
        if line == "SAVED" {
            saved = Some(Vars::default());
        } else if let Some(slot) = line.strip_prefix("BOOT=") {
            booted = Some(slot.to_owned());
        } else if let Some(d) = line.strip_prefix("DEFAULT=") {
            default = Some(d.to_owned());
        } else if let (Some(vars), Some((n, v))) = (saved.as_mut(), line.split_once('=')) {
            vars.set(n, v);
        }
    }
    Outcome {
        booted: booted.unwrap_or_else(|| panic!("no BOOT= line in {stdout}")),
        default: default.unwrap_or_default(),
        saved,
    }
}

#[test]
fn fragment_decides_like_the_model() {
    let slots = names(&["A", "B", "C"]);
    let fragment = grub_cfg(&BootState::new(&slots, 15).unwrap(), None);
    let mut trial_counts = std::collections::BTreeSet::new();
    for tries in [1, 4, 15] {
        for state in reachable_states(&slots, tries, 60) {
            for s in state.slots() {
                if let SlotStatus::Trial { tries_left } = s.status {
                    trial_counts.insert(tries_left);
                }
            }
            let mut env = Vars::default();
            mapping::write_state(&mut env, &state);
            let outcome = run_fragment(&fragment, &env);
            let mut model = state.clone();
            let expected = model.power_on().unwrap();
            assert_eq!(outcome.booted, expected.as_str(), "from {state:?}");
            assert_eq!(outcome.default, format!("skerry-{expected}"));
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
                    let mut committed = Vars::default();
                    mapping::write_state(&mut committed, &model);
                    for s in model.slots() {
                        for var in [ok_var(s.name.as_str()), try_var(s.name.as_str())] {
                            assert_eq!(
                                after.get(&var),
                                committed.get(&var),
                                "{var} from {state:?}"
                            );
                        }
                    }
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
    let mut expected = vec!["save_env", "-f", "/grubenv"];
    let vars: Vec<String> = slots
        .iter()
        .flat_map(|s| {
            [
                ok_var(s.as_str()),
                try_var(s.as_str()),
                left_var(s.as_str()),
            ]
        })
        .collect();
    expected.extend(vars.iter().map(String::as_str));
    assert_eq!(save_line.split_whitespace().collect::<Vec<_>>(), expected);
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
    let mut child = Command::new("grub-script-check")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(cfg.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "grub-script-check refused the fragment: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // And it does refuse broken input, so the check means something.
    let mut child = Command::new("grub-script-check")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&cfg.as_bytes()[..cfg.len() / 2])
        .unwrap();
    assert!(!child.wait().unwrap().success());
}
