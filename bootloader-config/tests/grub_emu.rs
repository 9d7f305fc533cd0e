//! The generated `grub.cfg` fragment in real GRUB: `grub-emu` (GRUB's own script engine
//! and `load_env`, run as a host program) reads the block our store wrote, runs the
//! fragment, and prints the slot it chose and the variables as it would save them. Both
//! must match the model's power-on, for many states.
//!
//! `save_env` cannot write through grub-emu's host filesystem ("sparse file not
//! allowed"), so the test reads the variables GRUB holds after the fragment, which are
//! what `save_env` writes, and checks the fragment tried to save exactly when the model's
//! state changed.

use std::path::Path;
use std::process::{Command, Stdio};

use skerry_boot_state::grub::mapping::{self, left_var, ok_var, try_var};
use skerry_boot_state::grub::{grub_cfg, GrubEnvStore};
use skerry_boot_state::uboot::vars::Vars;
use skerry_boot_state::{BootState, BootStore, FileMedium};

mod support {
    pub mod console;
    pub mod model_check;
    pub mod states;
    pub mod tools;
}

use support::console::{printed_vars, ConsoleBoot};
use support::model_check::{names, RaucView};
use support::states::reachable_states;
use support::tools::need;

/// Runs `cfg` in `grub-emu`: what GRUB did, and the menu default it chose.
fn run_grub(dir: &Path, cfg: &str, wanted: &[String]) -> (ConsoleBoot, String) {
    std::fs::write(dir.join("grub.cfg"), cfg).unwrap();
    let out = Command::new("grub-emu")
        .arg("-r")
        .arg("host")
        .arg("-d")
        .arg(dir)
        .stdin(Stdio::null())
        .output()
        .expect("start grub-emu");
    let text = String::from_utf8_lossy(&out.stdout).replace('\r', "\n");
    let field = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .unwrap_or_else(|| panic!("no {key} in grub-emu output:\n{text}"))
            .to_owned()
    };
    let boot = ConsoleBoot {
        chosen: field("SKERRY_BOOTED="),
        saved: field("SKERRY_SAVE=") == "1",
        vars: printed_vars(&text, wanted),
    };
    (boot, field("SKERRY_DEFAULT="))
}

/// RAUC reads only `<slot>_OK` and `<slot>_TRY`.
const RAUC_VIEW: RaucView = RaucView {
    write_state: mapping::write_state,
    fixed: &[],
    per_slot: &[ok_var, try_var],
};

#[test]
fn real_grub_runs_the_fragment_like_the_model() {
    need("grub-emu", "grub-emu");
    let dir = tempfile::tempdir().unwrap();
    let env = dir.path().join("grubenv");
    let slots = names(&["A", "B", "C"]);
    let mut wanted = vec!["ORDER".to_owned(), "SKERRY_TRIES".to_owned()];
    for s in &slots {
        wanted.extend([
            ok_var(s.as_str()),
            try_var(s.as_str()),
            left_var(s.as_str()),
        ]);
    }
    let mut cfg = String::from("set pager=0\n");
    cfg.push_str(&grub_cfg(
        &BootState::new(&slots, 3).unwrap(),
        Some(&env.display().to_string()),
    ));
    cfg.push_str("echo \"SKERRY_BOOTED=$skerry_slot\"\n");
    cfg.push_str("echo \"SKERRY_DEFAULT=$default\"\n");
    cfg.push_str("echo \"SKERRY_SAVE=$skerry_save\"\n");
    for w in &wanted {
        cfg.push_str(&format!("echo \"{w}=${w}\"\n"));
    }
    cfg.push_str("halt\n");

    let mut runs = 0;
    for tries in [1, 3, 15] {
        for state in reachable_states(&slots, tries, 25, 0x1234_5678_9abc_def1) {
            let _ = std::fs::remove_file(&env);
            GrubEnvStore::new(FileMedium::create(&env))
                .commit(&state)
                .unwrap();
            let (boot, default) = run_grub(dir.path(), &cfg, &wanted);
            let expected = boot.assert_like_model(&state, mapping::read_state, &RAUC_VIEW);
            assert_eq!(default, format!("skerry-{expected}"));
            runs += 1;
        }
    }
    assert!(runs > 40, "only {runs} states checked");

    // No boot state at all: the fallback slot starts and nothing is saved.
    let _ = std::fs::remove_file(&env);
    std::fs::write(
        &env,
        skerry_boot_state::grub::envblk::encode(&Vars::default(), 1024).unwrap(),
    )
    .unwrap();
    let (boot, _) = run_grub(dir.path(), &cfg, &wanted);
    assert_eq!(boot.chosen, "A");
    assert!(!boot.saved);
}
