//! Runs a generated boot script under a POSIX shell (both U-Boot's hush and GRUB's
//! script language share the syntax our scripts use), with the environment as shell
//! variables and stand-ins for the bootloader's save command that print `SAVED` and then
//! the saved variables as `name=value` lines.

use std::process::Command;

use skerry_boot_state::uboot::vars::Vars;

/// What the script printed: the slot it booted and what it saved.
pub struct ShellBoot {
    /// The slot of the `BOOT=` line.
    pub booted: String,
    /// The variables printed after `SAVED`, or `None` when the script did not save.
    pub saved: Option<Vars>,
}

impl ShellBoot {
    /// Reads the `BOOT=` line and the `name=value` lines after `SAVED` from `stdout`.
    pub fn parse(stdout: &str) -> ShellBoot {
        let (mut saved, mut booted) = (None, None);
        for line in stdout.lines() {
            if line == "SAVED" {
                saved = Some(Vars::default());
            } else if let Some(slot) = line.strip_prefix("BOOT=") {
                booted = Some(slot.to_owned());
            } else if let (Some(vars), Some((n, v))) = (saved.as_mut(), line.split_once('=')) {
                vars.set(n, v);
            }
        }
        ShellBoot {
            booted: booted.unwrap_or_else(|| panic!("no BOOT= line in {stdout}")),
            saved,
        }
    }
}

/// Runs `prelude` (the stand-ins), `env` as shell assignments, then `script`, and
/// returns what it printed; a failing script fails the test.
pub fn run_in_sh(prelude: &str, env: &Vars, script: &str) -> String {
    let mut text = String::from(prelude);
    for (name, value) in env.iter() {
        let (name, value) = (
            String::from_utf8(name.to_vec()).unwrap(),
            String::from_utf8(value.to_vec()).unwrap(),
        );
        text.push_str(&format!("{name}='{value}'\n"));
    }
    text.push_str(script);
    let out = Command::new("sh").args(["-c", &text]).output().unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "script failed: {stdout}");
    stdout
}
