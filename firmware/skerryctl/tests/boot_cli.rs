//! `skerryctl boot …` end to end, on every store kind: the documented command forms, the
//! JSON shape scripts rely on, and bad input that exits non-zero and writes nothing.

mod support {
    pub mod cli;
    pub mod refused;
}

use std::path::{Path, PathBuf};
use std::process::Command;

use support::cli::ok;
use support::refused::fails;

fn status(store: &str) -> serde_json::Value {
    serde_json::from_str(&ok(&[
        "boot", "status", "--store", store, "--output", "json",
    ]))
    .unwrap()
}

/// Every file under `dir`, with its bytes, to prove a command wrote nothing.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files: Vec<_> = walk(dir)
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect();
    files.sort();
    files
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// Prepares an uninitialized store of each kind under `dir`; returns the specs.
fn stores(dir: &Path) -> Vec<String> {
    let disk = dir.join("disk.img");
    std::fs::File::create(&disk)
        .unwrap()
        .set_len(8 << 20)
        .unwrap();
    let sgdisk = Command::new("sgdisk")
        .args(["-o", "-n", "1:2048:+1M", "-n", "2:0:+2M", "-n", "3:0:+2M"])
        .arg(&disk)
        .output()
        .expect("sgdisk runs (install the Debian package gdisk)");
    assert!(sgdisk.status.success(), "sgdisk failed");
    std::fs::create_dir(dir.join("boot")).unwrap();
    vec![
        format!(
            "uboot:{}/env.bin,offset=0x1000,size=0x2000,redundant",
            dir.display()
        ),
        format!("uboot:{}/single.env", dir.display()),
        format!("grub:{}/grubenv", dir.display()),
        format!("gpt:{},A=2,B=3", disk.display()),
        format!("tryboot:{}/boot,A=2,B=3", dir.display()),
    ]
}

/// The boot tries each store starts a trial with: the Raspberry Pi's tryboot gives one.
fn tries(store: &str) -> &'static str {
    if store.starts_with("tryboot") {
        "1"
    } else {
        "3"
    }
}

#[test]
fn lifecycle_on_every_store() {
    let dir = tempfile::tempdir().unwrap();
    for store in stores(dir.path()) {
        let tries = tries(&store);
        ok(&["boot", "init", "--store", &store, "--tries", tries]);
        let s = status(&store);
        assert_eq!(s["order"], serde_json::json!(["A", "B"]), "{store}");
        assert_eq!(s["slots"][0]["name"], "A", "{store}");
        assert_eq!(s["slots"][0]["good"], true, "{store}");
        assert_eq!(
            s["slots"][0]["tries_left"],
            tries.parse::<u8>().unwrap(),
            "{store}"
        );
        assert_eq!(s["slots"][1]["good"], false, "{store}");

        ok(&["boot", "begin-trial", "B", "--store", &store]);
        // The update engine reboots into a trial with `reboot "0 tryboot"`.
        let after_trial = ["--after-reboot", "0 tryboot"];
        assert_eq!(
            ok(&[
                &["boot", "simulate-boot", "--store", &store][..],
                &after_trial
            ]
            .concat())
            .trim(),
            "B"
        );
        ok(&["boot", "mark-good", "B", "--store", &store]);
        let s = status(&store);
        assert_eq!(s["order"], serde_json::json!(["B", "A"]), "{store}");
        assert_eq!(s["slots"][0]["good"], true, "{store}");

        // A failed trial of A: the bootloader gives it up and falls back to B.
        ok(&["boot", "begin-trial", "A", "--store", &store]);
        let n: usize = tries.parse().unwrap();
        for i in 0..n {
            let reboot: &[&str] = if i == 0 { &after_trial } else { &[] };
            assert_eq!(
                ok(&[&["boot", "simulate-boot", "--store", &store][..], reboot].concat()).trim(),
                "A"
            );
        }
        assert_eq!(
            ok(&["boot", "simulate-boot", "--store", &store]).trim(),
            "B"
        );
        let s = status(&store);
        let a = s["slots"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["name"] == "A")
            .unwrap();
        assert_eq!(a["status"], "bad", "{store}");
        assert_eq!(s["next_boot"], "B", "{store}");
        let text = ok(&["boot", "status", "--store", &store]);
        assert!(text.contains("next power-on starts slot B"), "{text}");
    }
}

#[test]
fn bad_input_is_named_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    for store in stores(dir.path()) {
        ok(&["boot", "init", "--store", &store, "--tries", tries(&store)]);
        let before = snapshot(dir.path());
        let cases: Vec<(Vec<&str>, &str)> = vec![
            (
                vec!["boot", "begin-trial", "C", "--store", &store],
                "unknown slot C",
            ),
            (
                vec!["boot", "mark-bad", "A", "--store", &store],
                "no known-good slot",
            ),
            (
                vec!["boot", "begin-trial", "A", "--store", &store],
                "no known-good slot",
            ),
            (
                vec!["boot", "mark-good", "B", "--store", &store],
                "slot B is bad",
            ),
            (
                vec!["boot", "begin-trial", "a b", "--store", &store],
                "invalid slot name",
            ),
        ];
        for (args, needle) in cases {
            fails(&args, needle);
            assert_eq!(snapshot(dir.path()), before, "{args:?} wrote something");
        }
    }
}

#[test]
fn missing_and_corrupt_stores_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = format!("grub:{}/nope", dir.path().display());
    fails(&["boot", "status", "--store", &missing], "nope");

    let garbage = dir.path().join("garbage.env");
    std::fs::write(&garbage, vec![0x5a; 0x4000]).unwrap();
    let store = format!("uboot:{}", garbage.display());
    fails(&["boot", "status", "--store", &store], "garbage.env");
    fails(&["boot", "simulate-boot", "--store", &store], "garbage.env");
    assert_eq!(std::fs::read(&garbage).unwrap(), vec![0x5a; 0x4000]);

    fails(
        &["boot", "status", "--store", "floppy:/dev/fd0"],
        "unknown kind",
    );
    fails(
        &[
            "boot",
            "init",
            "--store",
            &format!("grub:{}/g", dir.path().display()),
            "--tries",
            "16",
        ],
        "--tries 16",
    );
    assert!(!dir.path().join("g").exists());
}
