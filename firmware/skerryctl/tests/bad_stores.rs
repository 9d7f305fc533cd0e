//! `skerryctl boot …` over stores that are not what they claim to be: a directory, a
//! missing path, an empty file, a huge sparse file, garbage, a FIFO, `/dev/null`. Every
//! store kind and every command must answer with a clear error naming the store and a
//! non-zero exit: never a panic, an abort (a signal), or a hang.

mod support {
    pub mod bounded;
    #[expect(dead_code, reason = "these runs need only the binary, not `ok`")]
    pub mod cli;
}

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};

use support::bounded::run_bounded;

/// What sits at the path a store spec names.
#[derive(Debug, Clone, Copy)]
enum Bad {
    Directory,
    Missing,
    Empty,
    /// 64 GiB, sparse: reading it whole must never be tried.
    Huge,
    Garbage,
    Fifo,
    DevNull,
}

const ALL_BAD: [Bad; 7] = [
    Bad::Directory,
    Bad::Missing,
    Bad::Empty,
    Bad::Huge,
    Bad::Garbage,
    Bad::Fifo,
    Bad::DevNull,
];

/// Puts `bad` at `path` (or returns `/dev/null`) and gives the path to name.
fn make(bad: Bad, path: &Path) -> PathBuf {
    match bad {
        Bad::Directory => std::fs::create_dir(path).unwrap(),
        Bad::Missing => {}
        Bad::Empty => std::fs::write(path, b"").unwrap(),
        Bad::Huge => std::fs::File::create(path)
            .unwrap()
            .set_len(64 << 30)
            .unwrap(),
        Bad::Garbage => {
            let bytes: Vec<u8> = (0..0x11000u32).map(|i| (i * 7 + i / 13) as u8).collect();
            std::fs::write(path, bytes).unwrap();
        }
        Bad::Fifo => {
            let status = std::process::Command::new("mkfifo")
                .arg(path)
                .status()
                .expect("mkfifo runs (coreutils)");
            assert!(status.success(), "mkfifo {}", path.display());
        }
        Bad::DevNull => return PathBuf::from("/dev/null"),
    }
    path.to_owned()
}

/// The spec of each store kind with `target` where its file (or directory) goes.
fn specs(target: &Path) -> Vec<String> {
    let t = target.display();
    vec![
        format!("uboot:{t}"),
        format!("uboot:{t},offset=0x1000,size=0x2000,redundant"),
        format!("grub:{t}"),
        format!("gpt:{t},A=2,B=3"),
        format!("tryboot:{t},A=2,B=3"),
    ]
}

/// Every `boot` command that reads a store, and `init`, which writes one.
fn commands(spec: &str) -> Vec<Vec<String>> {
    let forms: [&[&str]; 7] = [
        &["status"],
        &["status", "--output", "json"],
        &["begin-trial", "B"],
        &["mark-good", "A"],
        &["mark-bad", "B"],
        &["simulate-boot"],
        &["init", "--force"],
    ];
    forms
        .iter()
        .map(|form| {
            let mut args = vec!["boot".to_string()];
            args.extend(form.iter().map(|s| s.to_string()));
            args.extend(["--store".to_string(), spec.to_string()]);
            args
        })
        .collect()
}

/// `init` may legitimately create a store where none is yet (a missing or empty U-Boot
/// or GRUB file, an empty tryboot directory, U-Boot bytes that hold no environment, as on
/// erased flash); every other command over every bad store must fail.
fn init_may_succeed(bad: Bad, spec: &str) -> bool {
    let env_file = spec.starts_with("uboot:") || spec.starts_with("grub:");
    match bad {
        Bad::Missing | Bad::Empty => env_file,
        Bad::Huge | Bad::Garbage => spec.starts_with("uboot:"),
        Bad::Directory => spec.starts_with("tryboot:"),
        Bad::Fifo | Bad::DevNull => false,
    }
}

/// Runs each of `commands` and describes each run that misbehaved.
fn run_each(bad: Bad, named: &Path, init_ok: bool, commands: &[Vec<String>]) -> Vec<String> {
    let mut problems = Vec::new();
    for args in commands {
        let is_init = args[1] == "init";
        let out = match run_bounded(args) {
            Ok(out) => out,
            Err(hang) => {
                problems.push(format!("{bad:?} {args:?}: {hang}"));
                continue;
            }
        };
        let stderr = String::from_utf8_lossy(&out.stderr);
        let problem = if let Some(signal) = out.status.signal() {
            Some(format!("killed by signal {signal}"))
        } else if stderr.contains("panicked") || stderr.contains("memory allocation") {
            Some(format!("crashed: {stderr}"))
        } else if out.status.success() && !(is_init && init_ok) {
            Some("succeeded".to_string())
        } else if !out.status.success() && !stderr.contains(&named.display().to_string()) {
            Some(format!(
                "the error does not name {}: {stderr}",
                named.display()
            ))
        } else {
            None
        };
        if let Some(problem) = problem {
            problems.push(format!("{bad:?} {args:?}: {problem}"));
        }
    }
    problems
}

#[test]
fn every_bad_store_of_every_kind_is_a_clear_error_for_every_command() {
    let mut failures = Vec::new();
    for bad in ALL_BAD {
        for k in 0..specs(Path::new("x")).len() {
            // A fresh directory per store: `init` may create what a later run expects
            // to be missing, so each command gets the bad input anew.
            for c in 0..commands("x").len() {
                let dir = tempfile::tempdir().unwrap();
                let target = make(bad, &dir.path().join("store"));
                let spec = specs(&target)[k].clone();
                let one = &commands(&spec)[c..=c];
                let init_ok = init_may_succeed(bad, &spec);
                failures.extend(run_each(bad, &target, init_ok, one));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The tryboot store is a directory: here `autoboot.txt` inside it is the bad thing (a
/// symbolic link stands in for `/dev/null`).
#[test]
fn every_bad_autoboot_txt_is_a_clear_error_for_every_command() {
    let mut failures = Vec::new();
    for bad in ALL_BAD {
        for c in 0..commands("x").len() {
            let dir = tempfile::tempdir().unwrap();
            let file = dir.path().join("autoboot.txt");
            let made = make(bad, &file);
            if made != file {
                std::os::unix::fs::symlink(&made, &file).unwrap();
            }
            let spec = format!("tryboot:{},A=2,B=3", dir.path().display());
            let one = &commands(&spec)[c..=c];
            let init_ok = matches!(bad, Bad::Missing | Bad::Empty);
            failures.extend(run_each(bad, &file, init_ok, one));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_uboot_size_beyond_our_limit_is_refused_before_reading() {
    let dir = tempfile::tempdir().unwrap();
    let env = dir.path().join("env");
    std::fs::write(&env, b"").unwrap();
    for size in ["0x7fffffffffffffff", "0x40000000"] {
        let spec = format!("uboot:{},size={size}", env.display());
        let out = run_bounded(&["boot", "status", "--store", &spec]).unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.code().is_some_and(|c| c != 0),
            "{spec}: {stderr}"
        );
        assert!(stderr.contains("at most"), "{spec}: {stderr}");
    }
}
