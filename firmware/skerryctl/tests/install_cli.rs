//! `skerryctl install`: the JSON report, and clear errors with a non-zero exit.

use std::path::Path;
use std::process::{Command, Output};

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_skerryctl"))
        .args(args)
        .output()
        .unwrap()
}

fn ok(args: &[&str]) -> String {
    let out = run(args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn install_reports_json_and_refuses_bad_input() {
    let tmp = tempfile::tempdir().unwrap();
    let p = |n: &str| tmp.path().join(n);
    ok(&["release", "keygen", "--out", s(&p("keys"))]);
    ok(&[
        "release",
        "init",
        "--keys",
        s(&p("keys")),
        "--repo",
        s(&p("repo")),
    ]);
    let image: Vec<u8> = (0..700_000u32)
        .map(|i| (i / 300 % 200) as u8 ^ (i as u8 & 3))
        .collect();
    std::fs::write(p("img"), &image).unwrap();
    ok(&[
        "release",
        "add",
        "--keys",
        s(&p("keys")),
        "--repo",
        s(&p("repo")),
        "--board",
        "pi",
        "--version",
        "1.0.0",
        "--image",
        s(&p("img")),
    ]);
    let url = format!("file://{}", p("repo").display());
    let root = p("repo").join("metadata/1.root.json");
    let base = |slot: &str, board: &str, state: &str| -> Vec<String> {
        [
            "install",
            "--repo",
            &url,
            "--trusted-root",
            s(&root),
            "--board",
            board,
            "--slot",
            s(&p(slot)),
            "--state",
            s(&p(state)),
            "--output",
            "json",
        ]
        .map(String::from)
        .to_vec()
    };
    let args = base("slot", "pi", "state");
    let report: serde_json::Value =
        serde_json::from_str(&ok(&args.iter().map(String::as_str).collect::<Vec<_>>())).unwrap();
    assert_eq!(report["version"], "1.0.0");
    assert_eq!(report["bytes_written"], 700_000);
    assert!(report["bytes_fetched"].as_u64().unwrap() > 0);
    assert!(report["chunks_fetched"].as_u64().unwrap() > 0);
    // Repeated chunks inside the image are copied from the slot, not fetched again.
    assert!(report["chunks_reused"].is_u64());
    assert_eq!(report["sha256"].as_str().unwrap().len(), 64);
    assert!(report["seconds"].as_f64().unwrap() >= 0.0);
    assert_eq!(std::fs::read(p("slot")).unwrap(), image);

    let args = base("slot2", "x86", "state2");
    let out = run(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no release for board x86"));

    let ts = p("repo").join("metadata/timestamp.json");
    let mut bytes = std::fs::read(&ts).unwrap();
    let at = bytes.windows(9).position(|w| w == b"\"version\"").unwrap() + 10;
    bytes[at] = if bytes[at] == b'7' { b'8' } else { b'7' };
    std::fs::write(&ts, bytes).unwrap();
    let args = base("slot3", "pi", "state3");
    let out = run(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("timestamp.json") && err.contains("signature"),
        "{err}"
    );
    assert!(!p("slot3").exists(), "a refused install created the slot");
}
