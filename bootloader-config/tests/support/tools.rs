//! Host tools the interop tests run: a missing one fails the test, naming the Debian
//! package to install, instead of letting it pass silently.

use std::process::Command;

/// Fails the test unless `tool` is on `PATH`, naming `package` to install.
pub fn need(tool: &str, package: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        found,
        "`{tool}` is missing: install the Debian package {package} \
         (listed in scripts/deps/bootstate-uboot-grub.apt)"
    );
}
