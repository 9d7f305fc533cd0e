//! The generated U-Boot boot script: `mkimage` wraps it, and run under a POSIX shell
//! with `setenv`/`saveenv` stand-ins (U-Boot's hush is a subset of that syntax) it picks
//! the same slot and saves the same state as the model's power-on, for many states.

use std::path::Path;
use std::process::Command;

use skerry_boot_state::uboot::boot_script;
use skerry_boot_state::uboot::mapping::{self, left_var, trial_var};
use skerry_boot_state::uboot::vars::Vars;
use skerry_boot_state::{BootState, SlotName, SlotStatus};

mod support {
    pub mod tools;
}

use support::tools::need;

fn names(list: &[&str]) -> Vec<SlotName> {
    list.iter().map(|n| SlotName::new(n).unwrap()).collect()
}

/// Distinct states reached by pseudo-random transitions, so every status (trials at
/// every count, trials with none left, bad slots in front) appears.
fn reachable_states(slots: &[SlotName], tries: u8, count: usize) -> Vec<BootState> {
    let mut rng = 0x9e37_79b9_7f4a_7c15_u64;
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
setenv() { if [ $# -ge 2 ]; then eval "$1=\"\$2\""; else unset "$1"; fi; }
saveenv() { echo SAVED; for v in $SKERRY_DUMP; do eval "if [ -n \"\${$v+x}\" ]; then echo \"$v=\$$v\"; fi"; done; }
"#;

struct Outcome {
    booted: String,
    saved: Option<Vars>,
}

fn run_script(script: &str, env: &Vars, dump: &[String]) -> Outcome {
    let mut text = String::from(PRELUDE);
    text.push_str(&format!("SKERRY_DUMP='{}'\n", dump.join(" ")));
    for (name, value) in env.iter() {
        let (name, value) = (
            String::from_utf8(name.to_vec()).unwrap(),
            String::from_utf8(value.to_vec()).unwrap(),
        );
        text.push_str(&format!("{name}='{value}'\n"));
    }
    text.push_str(script);
    let out = Command::new("sh").args(["-c", &text]).output().unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "script failed: {stdout}");
    let mut saved = None;
    let mut booted = None;
    for line in stdout.lines() {
        if line == "SAVED" {
            saved = Some(Vars::default());
        } else if let Some(slot) = line.strip_prefix("BOOT=") {
            booted = Some(slot.to_owned());
        } else if let (Some(vars), Some((n, v))) = (saved.as_mut(), line.split_once('=')) {
            vars.set(n, v);
        }
    }
    Outcome {
        booted: booted.unwrap_or_else(|| panic!("no BOOT= line in {stdout}")),
        saved,
    }
}

/// RAUC reads only `BOOT_ORDER` and `BOOT_<slot>_LEFT`: after the script they must be
/// exactly what a commit of the model's new state writes.
fn assert_rauc_view(vars: &Vars, model: &BootState) {
    let mut committed = Vars::default();
    mapping::write_state(&mut committed, model);
    let mut names = vec!["BOOT_ORDER".to_owned()];
    names.extend(model.slots().iter().map(|s| left_var(s.name.as_str())));
    for var in names {
        assert_eq!(
            vars.get(&var),
            committed.get(&var),
            "{var} after the script, for {model:?}"
        );
    }
}

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
        for state in reachable_states(&slots, tries, 60) {
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
                    assert_rauc_view(&saved, &model);
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
