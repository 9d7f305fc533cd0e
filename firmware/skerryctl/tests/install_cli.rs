//! `skerryctl install`: the JSON report, and clear errors with a non-zero exit.

mod support {
    pub mod cli;
    pub mod install;
    pub mod refused;
    pub mod release;
}

use support::cli::ok;
use support::install::install;
use support::refused::fails;
use support::release::{add, init, keygen};

#[test]
fn install_reports_json_and_refuses_bad_input() {
    let tmp = tempfile::tempdir().unwrap();
    let p = |n: &str| tmp.path().join(n);
    ok(&keygen(&p("keys")));
    ok(&init(&p("keys"), &p("repo")));
    let image: Vec<u8> = (0..700_000u32)
        .map(|i| (i / 300 % 200) as u8 ^ (i as u8 & 3))
        .collect();
    std::fs::write(p("img"), &image).unwrap();
    ok(&add(&p("keys"), &p("repo"), "pi", "1.0.0", &p("img")));
    let base = |slot: &str, board: &str, state: &str| -> Vec<String> {
        let mut args = install(&p("repo"), board, &p(slot), &p(state));
        args.extend(["--output".into(), "json".into()]);
        args
    };
    let args = base("slot", "pi", "state");
    let report: serde_json::Value = serde_json::from_str(&ok(&args)).unwrap();
    assert_eq!(report["version"], "1.0.0");
    assert_eq!(report["bytes_written"], 700_000);
    assert!(report["bytes_fetched"].as_u64().unwrap() > 0);
    assert!(report["chunks_fetched"].as_u64().unwrap() > 0);
    // Repeated chunks inside the image are copied from the slot, not fetched again.
    assert!(report["chunks_reused"].is_u64());
    assert_eq!(report["blake3"].as_str().unwrap().len(), 64);
    assert!(report["seconds"].as_f64().unwrap() >= 0.0);
    assert_eq!(std::fs::read(p("slot")).unwrap(), image);

    fails(&base("slot2", "x86", "state2"), "no release for board x86");

    let ts = p("repo").join("metadata/timestamp.json");
    let mut bytes = std::fs::read(&ts).unwrap();
    let at = bytes.windows(9).position(|w| w == b"\"version\"").unwrap() + 10;
    bytes[at] = if bytes[at] == b'7' { b'8' } else { b'7' };
    std::fs::write(&ts, bytes).unwrap();
    let err = fails(&base("slot3", "pi", "state3"), "signature");
    assert!(
        err.contains("timestamp.json") && err.contains("signature"),
        "{err}"
    );
    assert!(!p("slot3").exists(), "a refused install created the slot");
}
