//! Reading a real bootloader's console output (QEMU's serial line, `grub-emu`'s stdout).

use skerry_boot_state::uboot::vars::Vars;

/// The `name=value` lines of `output` whose name is in `wanted`, as variables (the
/// bootloader printed them after the script ran).
pub fn printed_vars(output: &str, wanted: &[String]) -> Vars {
    let mut vars = Vars::default();
    for line in output.lines() {
        if let Some((name, value)) = line.split_once('=') {
            if wanted.iter().any(|w| w == name) {
                vars.set(name, value);
            }
        }
    }
    vars
}
