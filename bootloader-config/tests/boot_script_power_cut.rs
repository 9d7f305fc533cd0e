//! A boot script update cut by power at every step, on the lossy page-cache model in
//! FAT mode (`skerry_medium::lossy`: unflushed sectors lost or kept in any subset, no
//! atomic rename), with the boot decision after each cut taken by real GRUB: `grub-emu`
//! runs [`early_config`] on the ESP as the cut left it, which picks and runs a script.
//!
//! After every cut, GRUB must run a whole script, the old or the new one (its first and
//! last lines are of one version and the file it named is byte for byte that version),
//! and boot a slot from it; after the update completed, the new one. The update run
//! again at the next start finishes the job. Distinct ESP states run in GRUB once each.
//!
//! Meta-tests show the check has teeth: an updater that writes the script over the one
//! GRUB runs, and our updater on a medium that skips the script's flush or reorders its
//! writes, are both caught.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};

use skerry_boot_state::grub::boot_script::{
    Applied, BootScriptUpdate, ENV_FILE, PRIMARY_SCRIPT, RUNNING, SCRIPT_VAR, SECOND_SCRIPT,
    VERSION_VAR,
};
use skerry_boot_state::grub::{early_config, grub_cfg, GrubEnvStore};
use skerry_boot_state::{BootState, BootStore, SlotName};
use skerry_medium::dir::Directory;
use skerry_medium::lossy::{every_power_loss, CutPoint, Faults, LossyFs, Mode};
use skerry_medium::FsMedium;

mod support {
    pub mod tools;
}

use support::tools::need;

/// Outcomes checked per cut at most.
const OUTCOMES_PER_CUT: usize = 64;

/// The boot state after slot B was committed (the update runs then): both good, B first.
fn committed() -> BootState {
    let (a, b) = (SlotName::new("A").unwrap(), SlotName::new("B").unwrap());
    let mut state = BootState::new(&[a.clone(), b.clone()], 3).unwrap();
    state.begin_trial(&b).unwrap();
    state.mark_good(&b).unwrap();
    state
}

/// A boot script of `version`: the real slot-selection fragment and a menu entry per
/// slot that prints what booted, between a first and a last line naming the version,
/// padded with `extra` sectors of comments so versions differ in length and tear
/// differently.
fn script(version: u32, extra: usize) -> Vec<u8> {
    let state = committed();
    let mut s = format!("echo \"SKERRY-SCRIPT-BEGIN v{version}\"\nset timeout=0\n");
    s.push_str(&grub_cfg(&state, Some("${cmdpath}/grubenv")));
    for slot in state.order() {
        s.push_str(&format!(
            "menuentry \"Slot {slot}\" --id skerry-{slot} {{\n  echo \"SKERRY-BOOTED script=v{version} slot={slot}\"\n  halt\n}}\n"
        ));
    }
    let end = format!("echo \"SKERRY-SCRIPT-END v{version}\"\n");
    let mut n = 0;
    let length = s.len() + end.len() + extra * 512;
    while s.len() + end.len() < length {
        s.push_str(&format!(
            "# v{version} padding line {n:04} ........................................\n"
        ));
        n += 1;
    }
    s.push_str(&end);
    s.into_bytes()
}

/// An ESP after the image builder (or an earlier update) wrote it: the environment with
/// `committed()` and `vars`, and the script files given.
fn esp(vars: &[(&str, &str)], files: &[(&str, &[u8])]) -> LossyFs {
    let fs = LossyFs::new(Mode::Fat);
    let mut store = GrubEnvStore::new(FsMedium::in_dir(fs.clone(), ENV_FILE));
    store.commit(&committed()).unwrap();
    let changes: Vec<(&str, Option<&str>)> = vars.iter().map(|(n, v)| (*n, Some(*v))).collect();
    if !changes.is_empty() {
        store.commit_variables(&changes).unwrap();
    }
    let mut fs = fs;
    for (name, bytes) in files {
        let os = std::ffi::OsStr::new(name);
        fs.write_at(os, 0, bytes).unwrap();
        fs.sync_file(os).unwrap();
    }
    fs.sync_dir().unwrap();
    assert!(fs.pending().is_empty(), "the starting ESP is durable");
    fs
}

/// What GRUB did on one ESP state.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Boot {
    /// The file the early config ran.
    file: String,
    /// The version its first line, last line and menu entry named.
    version: u32,
    slot: String,
}

/// The ESP's files as a sorted list (the cache key and what is put on the host).
type EspFiles = Vec<(String, Vec<u8>)>;

fn files_of(fs: &LossyFs) -> EspFiles {
    fs.names()
        .into_iter()
        .map(|n| {
            let bytes = fs.read(&n).unwrap_or_default();
            (n, bytes)
        })
        .collect()
}

/// Runs the early config in grub-emu on `files` (as `$cmdpath`); what it booted, or why
/// what it did is not a whole script booting a slot.
fn run_grub(files: &EspFiles) -> Result<Boot, String> {
    let dir = tempfile::tempdir().unwrap();
    let esp = dir.path().join("esp");
    std::fs::create_dir(&esp).unwrap();
    for (name, bytes) in files {
        std::fs::write(esp.join(name), bytes).unwrap();
    }
    let cfg = format!(
        "set pager=0\nset cmdpath=(host){}\nexport cmdpath\n{}",
        esp.display(),
        early_config()
    );
    std::fs::write(dir.path().join("grub.cfg"), cfg).unwrap();
    let text = grub_emu(dir.path());
    let field = |key: &str| -> Result<String, String> {
        text.lines()
            .find_map(|l| l.split_once(key).map(|(_, rest)| rest.trim().to_owned()))
            .ok_or_else(|| format!("GRUB printed no {key:?}:\n{text}"))
    };
    // The script that ran is the last one the early config started before it began.
    let began = text
        .find("SKERRY-SCRIPT-BEGIN v")
        .ok_or_else(|| format!("GRUB ran no script:\n{text}"))?;
    let file = text[..began]
        .lines()
        .rev()
        .find_map(|l| {
            l.split_once(RUNNING)
                .map(|(_, rest)| rest.trim().to_owned())
        })
        .ok_or_else(|| format!("GRUB printed no {RUNNING:?}:\n{text}"))?;
    let begin = field("SKERRY-SCRIPT-BEGIN v")?;
    let end = field("SKERRY-SCRIPT-END v")?;
    let booted = field("SKERRY-BOOTED script=v")?;
    let (booted_version, slot) = booted
        .split_once(" slot=")
        .ok_or_else(|| format!("odd boot line {booted:?}"))?;
    if begin != end || begin != booted_version {
        return Err(format!(
            "GRUB ran a torn script: it began as v{begin}, ended as v{end}, booted v{booted_version}:\n{text}"
        ));
    }
    Ok(Boot {
        file,
        version: begin.parse().map_err(|_| format!("version {begin:?}"))?,
        slot: slot.to_owned(),
    })
}

fn grub_emu(dir: &Path) -> String {
    // A torn script can leave GRUB in its menu waiting for a key: give up after a while.
    let out = Command::new("timeout")
        .arg("20")
        .arg("grub-emu")
        .args(["-r", "host", "-d"])
        .arg(dir)
        .stdin(Stdio::null())
        .output()
        .expect("start grub-emu (through coreutils' timeout)");
    String::from_utf8_lossy(&out.stdout).replace('\r', "\n")
}

/// The whole check of one update: `act` on `before`, cut everywhere; GRUB's decision on
/// each distinct outcome. Returns the number of cut points, outcomes and GRUB runs.
struct Enumerated {
    cuts: u64,
    outcomes: usize,
    grub_runs: usize,
}

fn check_update(
    before: &LossyFs,
    act: impl Fn(&LossyFs),
    old: &[(u32, &[u8])],
    new: (u32, &[u8]),
    finish: impl Fn(&LossyFs),
) -> Result<Enumerated, String> {
    let mut cache: BTreeMap<EspFiles, Result<Boot, String>> = BTreeMap::new();
    let mut outcomes = 0;
    let mut decide = |files: EspFiles| -> Result<Boot, String> {
        let key = files.clone();
        cache.entry(key).or_insert_with(|| run_grub(&files)).clone()
    };
    let mut last_cut = 0;
    let mut verify = |point: &CutPoint, fs: &LossyFs| -> Result<(), String> {
        outcomes += 1;
        last_cut = point.of_ops;
        let files = files_of(fs);
        let boot = decide(files.clone())?;
        let ran = files
            .iter()
            .find(|(n, _)| *n == boot.file)
            .map(|(_, b)| b.as_slice())
            .ok_or_else(|| format!("GRUB ran {} which is not on the ESP", boot.file))?;
        let Some(expected) = old
            .iter()
            .chain([&new])
            .find(|(v, _)| *v == boot.version)
            .map(|(_, b)| *b)
        else {
            return Err(format!("GRUB booted a script of version {}", boot.version));
        };
        if ran != expected {
            return Err(format!(
                "GRUB ran {} as v{}, but the file is not that script byte for byte",
                boot.file, boot.version
            ));
        }
        if point.completed() && boot.version != new.0 {
            return Err(format!(
                "the update completed but GRUB ran v{}",
                boot.version
            ));
        }
        // The next start runs the update again: it finishes, and GRUB then runs the new.
        finish(fs);
        let again = decide(files_of(fs))?;
        if again.version != new.0 {
            return Err(format!(
                "after the update ran again GRUB ran v{}",
                again.version
            ));
        }
        Ok(())
    };
    every_power_loss(before, act, &mut verify, OUTCOMES_PER_CUT)?;
    Ok(Enumerated {
        cuts: last_cut + 1,
        outcomes,
        grub_runs: cache.len(),
    })
}

fn apply(fs: &LossyFs, script: &[u8], version: u32) {
    let _ = BootScriptUpdate::new(fs.clone()).apply(script, version);
}

fn finish(script: &'static [u8], version: u32) -> impl Fn(&LossyFs) {
    move |fs| {
        let mut update = BootScriptUpdate::new(fs.clone());
        let done = update.apply(script, version);
        assert!(
            matches!(done, Ok(Applied::Installed(_) | Applied::Unchanged(_))),
            "the update run again after a cut: {done:?}"
        );
        assert!(
            update.copies_agree().unwrap(),
            "the update run again leaves both copies whole and agreeing"
        );
    }
}

fn leak(bytes: Vec<u8>) -> &'static [u8] {
    Box::leak(bytes.into_boxed_slice())
}

fn report(what: &str, e: &Enumerated) {
    println!(
        "{what}: {} cut points, {} outcomes checked, {} distinct ESP states run in grub-emu",
        e.cuts, e.outcomes, e.grub_runs
    );
}

#[test]
fn a_cut_anywhere_in_the_first_update_boots_a_whole_script() {
    need("grub-emu", "grub-emu");
    // A factory ESP: grub.cfg only, no script variables. The update writes grub.b.cfg.
    let old = leak(script(0, 6));
    let new = leak(script(3, 7));
    let before = esp(&[], &[(PRIMARY_SCRIPT, old)]);
    assert_eq!(run_grub(&files_of(&before)).unwrap().version, 0);
    let e = check_update(
        &before,
        |fs| apply(fs, new, 3),
        &[(0, old)],
        (3, new),
        finish(new, 3),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    report("factory grub.cfg -> grub.b.cfg", &e);
    assert!(e.cuts >= 6, "every step was cut: {}", e.cuts);
}

#[test]
fn a_cut_anywhere_in_a_later_update_boots_a_whole_script() {
    need("grub-emu", "grub-emu");
    // grub.b.cfg runs (v3); grub.cfg holds a stale, longer v0 that the update rewrites
    // in place of its own name and cuts to the new length.
    let stale = leak(script(0, 9));
    let old = leak(script(3, 6));
    let new = leak(script(4, 5));
    let before = esp(
        &[(SCRIPT_VAR, SECOND_SCRIPT), (VERSION_VAR, "3")],
        &[(PRIMARY_SCRIPT, stale), (SECOND_SCRIPT, old)],
    );
    assert_eq!(run_grub(&files_of(&before)).unwrap().version, 3);
    let e = check_update(
        &before,
        |fs| apply(fs, new, 4),
        &[(3, old)],
        (4, new),
        finish(new, 4),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    report("grub.b.cfg -> grub.cfg over a stale one", &e);
}

/// The mistake the design avoids: the new script written over the one GRUB runs.
fn write_in_place(fs: &LossyFs, script: &[u8]) {
    let mut dir = fs.clone();
    let name = std::ffi::OsStr::new(PRIMARY_SCRIPT);
    if dir.write_at(name, 0, script).is_err()
        || dir.set_len(name, script.len() as u64).is_err()
        || dir.sync_file(name).is_err()
    {
        return;
    }
    let mut store = GrubEnvStore::new(FsMedium::in_dir(fs.clone(), ENV_FILE));
    let _ = store.commit_variables(&[(VERSION_VAR, Some("3"))]);
}

#[test]
fn the_check_catches_a_script_written_over_the_running_one() {
    need("grub-emu", "grub-emu");
    let old = leak(script(0, 6));
    let new = leak(script(3, 7));
    let before = esp(&[], &[(PRIMARY_SCRIPT, old)]);
    let caught = check_update(
        &before,
        |fs| write_in_place(fs, new),
        &[(0, old)],
        (3, new),
        |fs| write_in_place(fs, new),
    );
    let e = caught
        .err()
        .expect("a script written in place must be caught");
    assert!(e.contains("torn") || e.contains("byte for byte"), "{e}");
}

#[test]
fn the_check_catches_a_switch_before_the_script_is_durable() {
    need("grub-emu", "grub-emu");
    // Flush 0 is the new script's sync: skipped, so the switch lands with the script's
    // sectors still in the page cache.
    let old = leak(script(0, 6));
    let new = leak(script(3, 7));
    let before = esp(&[], &[(PRIMARY_SCRIPT, old)]);
    before.set_faults(Faults {
        skip_flush: Some(0),
        swap_writes: None,
    });
    let caught = check_update(
        &before,
        |fs| apply(fs, new, 3),
        &[(0, old)],
        (3, new),
        finish(new, 3),
    );
    let e = caught
        .err()
        .expect("a switch before the script's flush must be caught");
    assert!(
        e.contains("torn") || e.contains("byte for byte") || e.contains("printed no"),
        "{e}"
    );

    // Write 1 (cutting the stale, longer grub.cfg to the new length) held back past the
    // switch, as a disk that reorders across the barrier would: the stale tail survives.
    let stale = leak(script(0, 9));
    let old = leak(script(3, 6));
    let new = leak(script(4, 5));
    let before = esp(
        &[(SCRIPT_VAR, SECOND_SCRIPT), (VERSION_VAR, "3")],
        &[(PRIMARY_SCRIPT, stale), (SECOND_SCRIPT, old)],
    );
    before.set_faults(Faults {
        skip_flush: None,
        swap_writes: Some(1),
    });
    let caught = check_update(
        &before,
        |fs| apply(fs, new, 4),
        &[(3, old)],
        (4, new),
        finish(new, 4),
    );
    let e = caught.err().expect("a reordered truncation must be caught");
    assert!(
        e.contains("torn") || e.contains("byte for byte") || e.contains("printed no"),
        "{e}"
    );
}

#[test]
fn an_update_after_a_cut_inside_the_last_switch_boots_a_whole_script() {
    need("grub-emu", "grub-emu");
    // Update v3 (grub.b.cfg) -> v4 (grub.cfg) was cut inside the block: its first
    // sector still names grub.b.cfg, the second copy names grub.cfg. GRUB runs v3.
    let stale = leak(script(0, 9));
    let v3 = leak(script(3, 6));
    let v4 = leak(script(4, 5));
    let v5 = leak(script(5, 4));
    let earlier = esp(
        &[(SCRIPT_VAR, SECOND_SCRIPT), (VERSION_VAR, "3")],
        &[(PRIMARY_SCRIPT, stale), (SECOND_SCRIPT, v3)],
    );
    let block_before = earlier.read(ENV_FILE).unwrap();
    BootScriptUpdate::new(earlier.clone()).apply(v4, 4).unwrap();
    let mut torn = earlier.read(ENV_FILE).unwrap();
    torn[..512].copy_from_slice(&block_before[..512]);
    let second = format!("{ENV_FILE}.b");
    let before = LossyFs::new(Mode::Fat)
        .with_file(ENV_FILE, &torn)
        .with_file(&second, &earlier.read(&second).unwrap())
        .with_file(PRIMARY_SCRIPT, v4)
        .with_file(SECOND_SCRIPT, v3);
    assert_eq!(run_grub(&files_of(&before)).unwrap().version, 3);
    // Now v5 comes: it must not write grub.b.cfg while the torn block names it.
    let e = check_update(
        &before,
        |fs| apply(fs, v5, 5),
        &[(3, v3), (4, v4)],
        (5, v5),
        finish(v5, 5),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    report("after a torn switch, grub.cfg -> grub.b.cfg", &e);
}
