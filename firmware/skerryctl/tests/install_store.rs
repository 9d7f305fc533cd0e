//! `skerryctl install --store STORE --slot-name B`: the target slot is marked bad in the
//! boot state before the install writes it, and stays bad when the install fails; the
//! booted slot is refused; `boot mark-good B --state DIR` commits B's release, so an
//! older one is then a downgrade, installed only with `--allow-downgrade`.

mod support {
    pub mod cli;
    pub mod install;
    pub mod refused;
    pub mod release;
}

use std::path::Path;

use skerry_boot_state::grub::GrubEnvStore;
use skerry_boot_state::{BootState, BootStore, FileMedium, SlotName, SlotStatus};
use support::cli::ok;
use support::install::install;
use support::refused::fails;
use support::release::{add, init, keygen, s};

fn status(env: &Path, slot: &SlotName) -> SlotStatus {
    GrubEnvStore::new(FileMedium::open(env).unwrap())
        .load()
        .unwrap()
        .status(slot)
        .unwrap()
}

#[test]
fn the_target_slot_is_marked_bad_and_mark_good_commits_its_release() {
    let tmp = tempfile::tempdir().unwrap();
    let p = |n: &str| tmp.path().join(n);
    ok(&keygen(&p("keys")));
    ok(&init(&p("keys"), &p("repo")));
    for (version, fill) in [("1.0.0", 1u8), ("2.0.0", 2)] {
        std::fs::write(p("img"), vec![fill; 300_000]).unwrap();
        ok(&add(&p("keys"), &p("repo"), "pi", version, &p("img")));
    }
    // A and B both good: A runs, B held an older good image.
    let (a, b) = (SlotName::new("A").unwrap(), SlotName::new("B").unwrap());
    let env = p("grubenv");
    let mut store = GrubEnvStore::new(FileMedium::create(&env));
    let mut state = BootState::new(&[a.clone(), b.clone()], 3).unwrap();
    state.begin_trial(&b).unwrap();
    state.mark_good(&b).unwrap();
    state.mark_good(&a).unwrap();
    store.commit(&state).unwrap();
    let grub = format!("grub:{}", env.display());
    let with_store = |version: &str, extra: &[&str]| -> Vec<String> {
        let mut args = install(&p("repo"), "pi", &p("slotB"), &p("state"));
        args.extend(
            ["--store", &grub, "--slot-name", "B", "--version", version]
                .iter()
                .chain(extra)
                .map(|a| a.to_string()),
        );
        args
    };

    // A failing install (the pack is damaged) still leaves B bad.
    let pack = find(&p("repo"), "/2.0.0/", ".image.pack");
    let good_pack = std::fs::read(&pack).unwrap();
    std::fs::write(&pack, vec![0u8; good_pack.len()]).unwrap();
    fails(&with_store("2.0.0", &[]), "tampered");
    assert_eq!(status(&env, &b), SlotStatus::Bad);
    // An unfinished install is never committed.
    fails(
        &[
            "boot",
            "mark-good",
            "B",
            "--store",
            &grub,
            "--state",
            s(&p("state")),
        ],
        "unfinished install",
    );
    std::fs::write(&pack, good_pack).unwrap();

    ok(&with_store("2.0.0", &[]));
    assert_eq!(
        status(&env, &b),
        SlotStatus::Bad,
        "installed but not yet tried"
    );
    assert_eq!(std::fs::read(p("slotB")).unwrap(), vec![2u8; 300_000]);

    // The booted slot is never written.
    fails(
        &with_store("2.0.0", &["--booted", s(&p("slotB"))]),
        "booted slot",
    );

    ok(&["boot", "begin-trial", "B", "--store", &grub]);
    ok(&[
        "boot",
        "mark-good",
        "B",
        "--store",
        &grub,
        "--state",
        s(&p("state")),
    ]);
    assert_eq!(status(&env, &b), SlotStatus::Good);

    // 2.0.0 is committed: 1.0.0 is a downgrade.
    let mut into_a = install(&p("repo"), "pi", &p("slotA"), &p("state"));
    into_a.extend(["--version".into(), "1.0.0".into()]);
    fails(&into_a, "downgrade");
    into_a.push("--allow-downgrade".into());
    ok(&into_a);
}

fn find(repo: &Path, dir: &str, suffix: &str) -> std::path::PathBuf {
    fn walk(d: &Path, out: &mut Vec<std::path::PathBuf>) {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else {
                out.push(p);
            }
        }
    }
    let mut all = Vec::new();
    walk(repo, &mut all);
    all.into_iter()
        .find(|p| {
            let t = p.to_string_lossy();
            t.contains(dir) && t.ends_with(suffix)
        })
        .unwrap()
}
