//! The `token` and `device` operator commands, run as the binary: a token is printed
//! once and listed by id only; revocation shows in the list; bad limits are refused by
//! name; revoking an unknown device fails.

use std::process::Command;

use skerry_server::join_token::JoinToken;

fn run(data: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_skerry-server"))
        .arg("--data")
        .arg(data)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn tokens_are_created_listed_and_revoked() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("srv");
    let (ok, out, err) = run(
        &data,
        &[
            "token",
            "create",
            "--uses",
            "3",
            "--ttl",
            "2h",
            "--label",
            "site=mine-7",
        ],
    );
    assert!(ok, "{err}");
    let token = JoinToken::parse(out.trim()).unwrap();
    let (ok, list, _) = run(&data, &["token", "list"]);
    assert!(ok);
    assert!(
        list.contains(&format!("{} active used 0/3", token.id)),
        "{list}"
    );
    assert!(list.contains("site=mine-7"), "{list}");
    assert!(!list.contains(out.trim()), "the secret is never listed");
    let (ok, _, err) = run(&data, &["token", "revoke", &token.id]);
    assert!(ok, "{err}");
    let (_, list, _) = run(&data, &["token", "list"]);
    assert!(list.contains(&format!("{} revoked", token.id)), "{list}");
    let (ok, _, err) = run(&data, &["token", "revoke", "0000000000000000"]);
    assert!(!ok && err.contains("no join token"), "{err}");
}

#[test]
fn bad_limits_and_unknown_devices_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("srv");
    let (ok, _, err) = run(&data, &["token", "create", "--uses", "0"]);
    assert!(!ok && err.contains("--uses 0"), "{err}");
    let (ok, _, err) = run(&data, &["token", "create", "--ttl", "10s"]);
    assert!(!ok && err.contains("--ttl"), "{err}");
    let (ok, _, err) = run(&data, &["token", "create", "--label", "nokey"]);
    assert!(!ok && err.contains("--label \"nokey\""), "{err}");
    let (ok, _, err) = run(&data, &["device", "revoke", "ghost"]);
    assert!(!ok && err.contains("ghost"), "{err}");
    let (ok, out, _) = run(&data, &["device", "logs", "ghost"]);
    assert!(ok && out.is_empty());
}
