//! Power cuts during an install: the installer process is killed at many points while it
//! writes slot B; the GRUB boot-state store (from `skerry-boot-state`) is untouched and
//! its power-on logic still starts the old slot A. A complete install followed by the
//! caller's `begin_trial` then boots B.

mod support {
    pub mod cli;
    pub mod install;
    pub mod release;
}

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use skerry_boot_state::grub::GrubEnvStore;
use skerry_boot_state::sim::Simulated;
use skerry_boot_state::{BootState, BootStore, FileMedium, SlotName};
use support::cli::{ok, skerryctl};
use support::install::install;
use support::release::{add, init, keygen, s};

/// The slot a power-on of a copy of `env` starts (the copy keeps the original pristine).
fn boots(env: &Path, scratch: &Path) -> SlotName {
    std::fs::copy(env, scratch).unwrap();
    GrubEnvStore::new(FileMedium::open(scratch).unwrap())
        .simulate_boot()
        .unwrap()
}

fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if i % 3 == 0 {
                x as u8
            } else {
                b'a' + (x % 4) as u8
            }
        })
        .collect()
}

#[test]
fn killing_the_installer_anywhere_leaves_the_old_slot_booting() {
    let tmp = tempfile::tempdir().unwrap();
    let p = |n: &str| tmp.path().join(n);
    let (keys, repo, img) = (p("keys"), p("repo"), p("v2.img"));
    ok(&keygen(&keys));
    ok(&init(&keys, &repo));
    let v2 = noise(12 << 20, 7);
    std::fs::write(&img, &v2).unwrap();
    ok(&add(&keys, &repo, "pi", "2.0.0", &img));

    // Slot A holds the old system and is good; B is the inactive slot.
    let a = SlotName::new("A").unwrap();
    let b = SlotName::new("B").unwrap();
    let env = p("grubenv");
    let mut store = GrubEnvStore::new(FileMedium::create(&env));
    store
        .commit(&BootState::new(&[a.clone(), b.clone()], 3).unwrap())
        .unwrap();
    let env_before = std::fs::read(&env).unwrap();
    std::fs::write(p("slotA"), noise(12 << 20, 3)).unwrap();
    assert_eq!(boots(&env, &p("scratch")), a);

    let args = |state: &Path| -> Vec<String> {
        let mut args = install(&repo, "pi", &p("slotB"), state);
        args.extend(["--seed".into(), s(&p("slotA")).into()]);
        args
    };

    // How long a whole install takes here, to spread the cuts over it.
    let started = Instant::now();
    ok(&args(&p("state-calibrate")));
    let whole = started.elapsed();
    std::fs::remove_file(p("slotB")).unwrap();

    let mut cut_mid_install = 0;
    for i in 0..8u32 {
        let at = whole.mul_f64(f64::from(i) / 8.0);
        let mut child = skerryctl()
            .args(args(&p(&format!("state-{i}"))))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(at);
        if child.try_wait().unwrap().is_none() {
            cut_mid_install += 1;
        }
        let _ = child.kill();
        child.wait().unwrap();
        assert_eq!(
            std::fs::read(&env).unwrap(),
            env_before,
            "cut {i} changed the boot state"
        );
        assert_eq!(
            boots(&env, &p("scratch")),
            a,
            "cut {i}: the board no longer boots A"
        );
    }
    assert!(
        cut_mid_install >= 4,
        "only {cut_mid_install} cuts landed mid-install"
    );

    // After a complete install the caller starts B's trial, and B boots.
    ok(&args(&p("state-final")));
    assert_eq!(std::fs::read(p("slotB")).unwrap(), v2);
    assert_eq!(
        std::fs::read(&env).unwrap(),
        env_before,
        "install touched the boot state"
    );
    let mut state = store.load().unwrap();
    state.begin_trial(&b).unwrap();
    store.commit(&state).unwrap();
    assert_eq!(boots(&env, &p("scratch")), b);
    let _ = Duration::ZERO;
}
