//! `skerryctl` as a newcomer meets it: shell completions, `--output json` on every
//! command that reports, examples in the help, and hints under the errors people hit
//! first.

mod support {
    pub mod cli;
    pub mod install;
    pub mod maintenance;
    pub mod refused;
    pub mod release;
}

use support::cli::ok;
use support::install::install;
use support::maintenance::{rotate_root, timestamp};
use support::refused::fails;
use support::release::{add, init, keygen};

fn json(args: &[&str]) -> serde_json::Value {
    let with_json = [args, &["--output", "json"]].concat();
    let out = ok(&with_json);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: {e}: {out}"))
}

#[test]
fn completions_for_every_shell_name_the_commands() {
    for (shell, needle) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef skerryctl"),
        ("fish", "complete -c skerryctl"),
        ("elvish", "skerryctl"),
        ("powershell", "skerryctl"),
    ] {
        let script = ok(&["completions", shell]);
        assert!(script.contains(needle), "{shell}: {script}");
        assert!(script.contains("begin-trial"), "{shell}");
        assert!(script.contains("rotate-root"), "{shell}");
    }
    fails(&["completions", "tcsh"], "invalid value 'tcsh'");
}

#[test]
fn help_of_every_command_shows_an_example() {
    let commands: [&[&str]; 13] = [
        &[],
        &["boot", "init"],
        &["boot", "status"],
        &["boot", "begin-trial"],
        &["boot", "mark-good"],
        &["boot", "mark-bad"],
        &["boot", "simulate-boot"],
        &["release", "keygen"],
        &["release", "init"],
        &["release", "add"],
        &["release", "rotate-root"],
        &["release", "timestamp"],
        &["install"],
    ];
    for command in commands {
        let help = ok(&[command, &["--help"]].concat());
        assert!(help.contains("Example"), "{command:?}: {help}");
        assert!(help.contains("skerryctl "), "{command:?}: {help}");
    }
}

#[test]
fn every_boot_command_reports_json() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("grub:{}/grubenv", dir.path().display());
    let s = ["--store", store.as_str()];
    let init = json(&[&["boot", "init"][..], &s].concat());
    assert_eq!(init["order"], serde_json::json!(["A", "B"]));
    assert_eq!(
        json(&[&["boot", "status"][..], &s].concat())["next_boot"],
        "A"
    );
    let trial = json(&[&["boot", "begin-trial", "B"][..], &s].concat());
    assert_eq!(trial["slots"][0]["status"], "trial");
    let boot = json(&[&["boot", "simulate-boot"][..], &s].concat());
    assert_eq!(boot["started"], "B");
    assert_eq!(boot["slots"][0]["tries_left"], 2);
    let good = json(&[&["boot", "mark-good", "B"][..], &s].concat());
    assert_eq!(good["slots"][0]["good"], true);
    ok(&[&["boot", "begin-trial", "A"][..], &s].concat());
    let bad = json(&[&["boot", "mark-bad", "A"][..], &s].concat());
    assert_eq!(bad["ended_trial"], "A");
    assert_eq!(bad["next_boot"], "B");
}

#[test]
fn every_release_command_and_install_report_json() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path();
    let (keys, new_keys, repo) = (p.join("k"), p.join("k2"), p.join("r"));
    assert_eq!(json(&keygen(&keys))["root_keys"], 1);
    json(&keygen(&new_keys));
    assert_eq!(json(&init(&keys, &repo))["root_version"], 1);
    let image = p.join("img");
    std::fs::write(&image, vec![7u8; 300_000]).unwrap();
    let added = json(&add(&keys, &repo, "rpi4", "1.0.0", &image));
    assert_eq!(added["version"], "1.0.0");
    assert_eq!(added["image_len"], 300_000);
    assert!(json(&timestamp(&keys, &repo))["timestamp_version"].is_u64());
    assert_eq!(
        json(&rotate_root(&keys, &new_keys, &repo))["root_version"],
        2
    );

    let slot = p.join("slot");
    let args = install(&repo, "rpi4", &slot, &p.join("state"));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let report = json(&[&args[..], &["--slot-size", "1000000"]].concat());
    assert_eq!(report["version"], "1.0.0");
}

#[test]
fn a_redundant_uboot_env_read_as_single_gets_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    let env = dir.path().join("uboot.env");
    let redundant = format!("uboot:{},size=0x2000,redundant", env.display());
    // A redundant copy has a flag byte after its CRC, so read as single it fails the CRC.
    ok(&["boot", "init", "--store", &redundant]);
    let single = format!("uboot:{},size=0x2000", env.display());
    let err = fails(&["boot", "status", "--store", &single], "hint:");
    assert!(err.contains("reads as a redundant environment"), "{err}");
    assert!(err.contains(",redundant"), "{err}");

    std::fs::write(&env, vec![0u8; 0x4000]).unwrap();
    let err = fails(&["boot", "status", "--store", &single], "hint:");
    assert!(err.contains("if the environment is redundant"), "{err}");
}

#[test]
fn a_trusted_root_of_another_repository_gets_a_hint() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path();
    let image = p.join("img");
    std::fs::write(&image, vec![1u8; 100_000]).unwrap();
    for name in ["one", "two"] {
        let (keys, repo) = (p.join(format!("{name}-keys")), p.join(name));
        ok(&keygen(&keys));
        ok(&init(&keys, &repo));
        ok(&add(&keys, &repo, "rpi4", "1.0.0", &image));
    }
    let mut args = install(&p.join("two"), "rpi4", &p.join("slot"), &p.join("state"));
    let root = args.iter().position(|a| a == "--trusted-root").unwrap() + 1;
    args[root] = p.join("one/metadata/1.root.json").display().to_string();
    args.extend(["--slot-size".into(), "1000000".into()]);
    let err = fails(&args, "hint:");
    assert!(err.contains("may belong to another repository"), "{err}");
}

#[test]
fn an_unknown_board_or_version_lists_what_the_repository_has() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path();
    let (keys, repo, image) = (p.join("k"), p.join("r"), p.join("img"));
    std::fs::write(&image, vec![3u8; 100_000]).unwrap();
    ok(&keygen(&keys));
    ok(&init(&keys, &repo));
    ok(&add(&keys, &repo, "rpi4", "1.0.0", &image));
    ok(&add(&keys, &repo, "rpi4", "1.1.0", &image));
    let slot = p.join("slot");
    for (board, extra) in [("rpi5", &[][..]), ("rpi4", &["--version", "2.0.0"][..])] {
        let args = install(&repo, board, &slot, &p.join("state"));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let err = fails(
            &[&args[..], extra, &["--slot-size", "1000000"]].concat(),
            "it has",
        );
        assert!(
            err.contains("rpi4 1.1.0 (stable), rpi4 1.0.0 (stable)"),
            "{board} {extra:?}: {err}"
        );
    }
}
