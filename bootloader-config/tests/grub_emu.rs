//! The generated `grub.cfg` fragment in real GRUB: `grub-emu` (GRUB's own script engine
//! and `load_env`, run as a host program) reads the block our store wrote, runs the
//! fragment, and prints the slot it chose and the variables as it would save them. Both
//! must match the model's power-on, for many states.
//!
//! `save_env` cannot write through grub-emu's host filesystem ("sparse file not
//! allowed"), so each state runs twice. Once with `save_env` replaced by an `echo` that
//! succeeds: the test reads the variables GRUB holds after the fragment, which are what
//! `save_env` writes, and checks the fragment tried to save exactly when the model's state
//! changed. Once with the real, failing `save_env`: the fragment must then start the first
//! good slot instead of a trial whose counted attempt is not on the disk. (Saving for real,
//! and failing for real on a read-only disk, is proved under OVMF in
//! `hil-tests/tests/grub_efi_boot_count.rs`.)

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
use support::model_check::{names, unsaved_choice, RaucView};
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
        saved: text.contains(SAVE_ECHO) || text.contains(SAVE_FAILED),
        vars: printed_vars(&text, wanted),
    };
    (boot, field("SKERRY_DEFAULT="))
}

/// What the `save_env` stand-in prints (it succeeds, like a working save).
const SAVE_ECHO: &str = "SKERRY_SAVED:";
/// What the fragment prints when `save_env` failed.
const SAVE_FAILED: &str = "saving the environment failed";

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
    let env_word = env.display().to_string();
    let fragment = grub_cfg(&BootState::new(&slots, 3).unwrap(), Some(&env_word));
    let save = format!("save_env -f {env_word} ");
    assert!(fragment.contains(&save), "{fragment}");
    let with_working_save = script(
        &fragment.replace(&save, &format!("echo {SAVE_ECHO} ")),
        &wanted,
    );
    let with_real_save = script(&fragment, &wanted);

    let mut runs = 0;
    let mut fell_back = 0;
    for tries in [1, 3, 15] {
        for state in reachable_states(&slots, tries, 25, 0x1234_5678_9abc_def1) {
            let _ = std::fs::remove_file(&env);
            GrubEnvStore::new(FileMedium::create(&env))
                .commit(&state)
                .unwrap();
            let (boot, default) = run_grub(dir.path(), &with_working_save, &wanted);
            let expected = boot.assert_like_model(&state, mapping::read_state, &RAUC_VIEW);
            assert_eq!(default, format!("skerry-{expected}"));

            let (failed, default) = run_grub(dir.path(), &with_real_save, &wanted);
            let fallback = unsaved_choice(&state);
            assert_eq!(failed.chosen, fallback, "save failed, from {state:?}");
            assert_eq!(default, format!("skerry-{fallback}"));
            assert_eq!(failed.saved, boot.saved, "from {state:?}");
            fell_back += usize::from(fallback != expected.as_str());
            runs += 1;
        }
    }
    assert!(runs > 40, "only {runs} states checked");
    assert!(
        fell_back > 10,
        "only {fell_back} states fell back to a good slot"
    );

    // No boot state at all: the fallback slot starts and nothing is saved.
    let _ = std::fs::remove_file(&env);
    std::fs::write(
        &env,
        skerry_boot_state::grub::envblk::encode(&Vars::default(), 1024).unwrap(),
    )
    .unwrap();
    let (boot, _) = run_grub(dir.path(), &with_real_save, &wanted);
    assert_eq!(boot.chosen, "A");
    assert!(!boot.saved);
}

/// The `grub.cfg` grub-emu runs: `fragment`, then the slot it chose and the variables.
fn script(fragment: &str, wanted: &[String]) -> String {
    let mut cfg = String::from("set pager=0\n");
    cfg.push_str(fragment);
    cfg.push_str("echo \"SKERRY_BOOTED=$skerry_slot\"\n");
    cfg.push_str("echo \"SKERRY_DEFAULT=$default\"\n");
    for w in wanted {
        cfg.push_str(&format!("echo \"{w}=${w}\"\n"));
    }
    cfg.push_str("halt\n");
    cfg
}
