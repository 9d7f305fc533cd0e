//! `skerryctl release bundle` and `skerryctl install --repo bundle:FILE`: a delta bundle
//! cut on the release machine installs on a device holding its base, reported in JSON;
//! a refused cut names what was wrong and leaves no file.

mod support {
    pub mod cli;
    pub mod install;
    pub mod refused;
    pub mod release;
}

use std::path::Path;

use support::cli::ok;
use support::install::install;
use support::refused::fails;
use support::release::{add, init, keygen, s};

fn bundle<'a>(
    keys: &'a Path,
    repo: &'a Path,
    version: &'a str,
    from: Option<&'a str>,
    out: &'a Path,
) -> Vec<&'a str> {
    let mut args = vec![
        "release",
        "bundle",
        "--keys",
        s(keys),
        "--repo",
        s(repo),
        "--board",
        "pi",
        "--version",
        version,
        "--expires",
        "60d",
        "--out",
        s(out),
        "--output",
        "json",
    ];
    if let Some(from) = from {
        args.extend(["--from", from]);
    }
    args
}

#[test]
fn a_delta_bundle_cut_by_the_cli_installs_on_its_base() {
    let tmp = tempfile::tempdir().unwrap();
    let p = |n: &str| tmp.path().join(n);
    ok(&keygen(&p("keys")));
    ok(&init(&p("keys"), &p("repo")));
    let v1: Vec<u8> = (0..900_000u32)
        .map(|i| ((i.wrapping_mul(2_654_435_761) >> 13) as u8) ^ (i / 500) as u8)
        .collect();
    let mut v2 = v1.clone();
    v2[400_000..420_000].fill(7);
    std::fs::write(p("v1.img"), &v1).unwrap();
    std::fs::write(p("v2.img"), &v2).unwrap();
    ok(&add(&p("keys"), &p("repo"), "pi", "1.0.0", &p("v1.img")));
    ok(&add(&p("keys"), &p("repo"), "pi", "1.1.0", &p("v2.img")));

    let report: serde_json::Value = serde_json::from_str(&ok(&bundle(
        &p("keys"),
        &p("repo"),
        "1.1.0",
        Some("1.0.0"),
        &p("d.skb"),
    )))
    .unwrap();
    assert_eq!(report["from"], "1.0.0");
    assert_eq!(report["version"], "1.1.0");
    assert_eq!(
        report["bundle_len"],
        std::fs::metadata(p("d.skb")).unwrap().len()
    );
    assert!(report["chunks_reused"].as_u64().unwrap() > 0, "{report}");
    assert!(report["valid_until"].is_string());

    // The device: its active slot holds 1.0.0; the repository is the bundle alone.
    let mut args = install(&p("repo"), "pi", &p("slot-b"), &p("state"));
    let at = args.iter().position(|a| a.starts_with("file://")).unwrap();
    args[at] = format!("bundle:{}", p("d.skb").display());
    args.extend([
        "--seed".into(),
        s(&p("v1.img")).into(),
        "--output".into(),
        "json".into(),
    ]);
    let installed: serde_json::Value = serde_json::from_str(&ok(&args)).unwrap();
    assert_eq!(installed["version"], "1.1.0");
    assert_eq!(std::fs::read(p("slot-b")).unwrap(), v2);

    // Refused cuts: nothing is written.
    let (keys, repo, x) = (p("keys"), p("repo"), p("x.skb"));
    fails(
        &bundle(&keys, &repo, "1.1.0", Some("1.1.0"), &x),
        "not older",
    );
    let err = fails(
        &bundle(&keys, &repo, "3.0.0", None, &x),
        "no release pi 3.0.0",
    );
    assert!(err.contains("1.0.0, 1.1.0"), "{err}");
    assert!(!p("x.skb").exists() && !p("x.skb.tmp").exists());
}
