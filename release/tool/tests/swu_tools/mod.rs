//! Debian's `openssl` and `swupdate` for `.swu` tests: a self-signed signing key and
//! certificate, and `swupdate -c` (check only) of a `.swu` against a certificate. Also
//! used by skerryctl's `release swu` test (by path).

use std::path::Path;
use std::process::Command;

/// Fails naming the package when `tool` is not installed.
pub fn need(tool: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .status()
        .unwrap()
        .success();
    assert!(
        found,
        "{tool} is missing: install it with scripts/install-deps (scripts/deps/ddi.apt)"
    );
}

/// `DIR/NAME.key` and the self-signed `DIR/NAME.pem` for it (RSA 2048, 30 days).
pub fn cert(dir: &Path, name: &str) {
    let ok = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30", "-subj",
        ])
        .arg(format!("/CN={name}"))
        .arg("-keyout")
        .arg(dir.join(format!("{name}.key")))
        .arg("-out")
        .arg(dir.join(format!("{name}.pem")))
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
}

/// `swupdate -c` of `swu` against `cert`: whether it passed, and what it said.
pub fn swupdate_check(swu: &Path, cert: &Path) -> (bool, String) {
    let out = Command::new("swupdate")
        .args(["-H", "pi:1.0"])
        .arg("-c")
        .arg("-i")
        .arg(swu)
        .arg("-k")
        .arg(cert)
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}
