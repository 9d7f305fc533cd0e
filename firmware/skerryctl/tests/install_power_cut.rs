//! Power cuts during an install: the installer process is killed at many points while it
//! writes slot B; the GRUB boot-state store (from `skerry-boot-state`) is untouched and
//! its power-on logic still starts the old slot A. A complete install followed by the
//! caller's `begin_trial` then boots B.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use skerry_boot_state::grub::GrubEnvStore;
use skerry_boot_state::{BootState, BootStore, FileMedium, SlotName};

fn skerryctl() -> Command {
    Command::new(env!("CARGO_BIN_EXE_skerryctl"))
}

fn ok(args: &[&str]) {
    let out = skerryctl().args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The slot a power-on of a copy of `env` starts (the copy keeps the original pristine).
fn boots(env: &Path, scratch: &Path) -> SlotName {
    std::fs::copy(env, scratch).unwrap();
    GrubEnvStore::new(FileMedium::open(scratch).unwrap())
        .simulate_power_on()
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
    ok(&["release", "keygen", "--out", s(&keys)]);
    ok(&["release", "init", "--keys", s(&keys), "--repo", s(&repo)]);
    let v2 = noise(12 << 20, 7);
    std::fs::write(&img, &v2).unwrap();
    ok(&[
        "release",
        "add",
        "--keys",
        s(&keys),
        "--repo",
        s(&repo),
        "--board",
        "pi",
        "--version",
        "2.0.0",
        "--image",
        s(&img),
    ]);

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

    let url = format!("file://{}", repo.display());
    let root = repo.join("metadata/1.root.json");
    let args = |state: &Path| -> Vec<String> {
        [
            "install",
            "--repo",
            &url,
            "--trusted-root",
            s(&root),
            "--board",
            "pi",
            "--slot",
            s(&p("slotB")),
            "--seed",
            s(&p("slotA")),
            "--state",
            s(state),
        ]
        .map(String::from)
        .to_vec()
    };

    // How long a whole install takes here, to spread the cuts over it.
    let started = Instant::now();
    let out = skerryctl()
        .args(args(&p("state-calibrate")))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
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
    let out = skerryctl().args(args(&p("state-final"))).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
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
