//! The system stage (`/sbin/skerryd` as PID 1 in the slot): the writable mounts, `/var`
//! from the state partition (grown and formatted on first boot), the ESP, the device's
//! TLS material moved from the ESP into `/var` once, the managed files bind-mounted over
//! `/etc`, then the daemon as PID 1's child until it exits, and the power action it
//! asked for.

use std::path::{Path, PathBuf};

use skerry_boards::Role;
use skerryd_core::partitions::{self, BlockPartition};

use super::cmdline::Cmdline;
use super::state::{self, VarOutcome};
use super::{console, fatal, loopback, mounts, power, reaper};

/// The daemon and its arguments.
pub const DAEMON: [&str; 4] = ["/sbin/skerryd", "--root", "/", "--device"];
/// Where the ESP keeps a device's TLS material until first boot.
pub const ESP_PKI: &str = "/boot/efi/skerry/pki";
/// Where the daemon reads it (`Layout::device().pki()`).
pub const VAR_PKI: &str = "/var/skerry/pki";
/// Where the daemon renders the managed files (`Layout::device().etc()`).
pub const RENDERED: &str = "/var/skerry/etc";
/// The TLS files moved.
pub const PKI_FILES: [&str; 3] = ["ca.crt", "node.crt", "node.key"];

/// The partition of `definition` with `role` (the first), as the kernel lists it.
fn partition_with(
    definition: &skerry_boards::BoardDefinition,
    found: &[BlockPartition],
    role: Role,
) -> Option<BlockPartition> {
    let name = &definition
        .disk
        .partitions
        .iter()
        .find(|p| p.role == role)?
        .name;
    found.iter().find(|p| &p.label == name).cloned()
}

/// Moves the TLS files from `from` (the ESP) to `to` (in `/var`) when `to` has none
/// yet: copied into a temporary directory, synced, renamed into place, and only then
/// removed from the ESP. Returns whether it moved anything.
pub fn move_pki(from: &Path, to: &Path) -> std::io::Result<bool> {
    if to.exists() || !from.is_dir() {
        return Ok(false);
    }
    let parent = to.parent().unwrap_or(Path::new("/"));
    std::fs::create_dir_all(parent)?;
    let staging = parent.join(".pki.new");
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&staging)?;
    let mut moved = Vec::new();
    for name in PKI_FILES {
        let source = from.join(name);
        if !source.is_file() {
            continue;
        }
        let bytes = skerryd_core::layout::read_bounded(&source, 64 * 1024)
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        skerry_medium::write_atomic(&staging.join(name), &bytes)
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        moved.push(source);
    }
    if moved.is_empty() {
        std::fs::remove_dir(&staging)?;
        return Ok(false);
    }
    std::fs::rename(&staging, to)?;
    std::fs::File::open(parent)?.sync_all()?;
    for source in moved {
        std::fs::remove_file(source)?;
    }
    Ok(true)
}

/// Creates the rendered files that do not exist yet (empty), so each has something to
/// bind-mount on the very first boot; the daemon renders them and mounts them again.
pub fn ensure_rendered(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut files = Vec::new();
    for name in mounts::MANAGED_FILES {
        let path = dir.join(name);
        if !path.exists() {
            std::fs::write(&path, b"")?;
        }
        files.push(path);
    }
    Ok(files)
}

/// Runs the stage; never returns.
pub fn run() -> ! {
    let text = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
    let cmdline = Cmdline::parse(&text);
    let slot = cmdline.slot().unwrap_or("unknown").to_owned();
    console::line(&format!("SKERRY-INIT stage=system slot={slot}"));
    for step in mounts::system() {
        if let Err(e) = mounts::apply(&step) {
            fatal(&super::chain(&e));
        }
    }
    let board =
        match skerryd_core::device_board::read_definition(Path::new(super::initramfs::BOARD)) {
            Ok(board) => board,
            Err(e) => fatal(&super::chain(&e)),
        };
    let found =
        partitions::scan(Path::new("/sys/class/block"), Path::new("/dev")).unwrap_or_default();
    let Some(var) = partition_with(&board, &found, Role::State) else {
        fatal(&"the kernel lists no state partition (the board's role = \"state\")");
    };
    let outcome = match state::prepare(
        &var,
        Path::new("/sys/class/block"),
        Path::new(state::MKE2FS),
        &mut |l| console::line(&format!("skerryd: {l}")),
    ) {
        Ok(outcome) => outcome,
        Err(e) => fatal(&super::chain(&e)),
    };
    if let Err(e) = mounts::apply(&mounts::var(&var.device)) {
        fatal(&super::chain(&e));
    }
    let word = match outcome {
        VarOutcome::Formatted => "formatted",
        VarOutcome::Kept => "mounted",
    };
    console::line(&format!("SKERRY-VAR {word} dev={}", var.device.display()));
    match partition_with(&board, &found, Role::Boot) {
        Some(esp) => {
            if let Err(e) = mounts::apply(&mounts::esp(&esp.device)) {
                fatal(&super::chain(&e));
            }
        }
        None => fatal(&"the kernel lists no boot partition (the ESP)"),
    }
    if let Err(e) = std::fs::write("/run/cmdline", text.as_bytes()) {
        fatal(&format!("writing /run/cmdline: {e}"));
    }
    match move_pki(Path::new(ESP_PKI), Path::new(VAR_PKI)) {
        Ok(true) => console::line(&format!(
            "skerryd: moved the device's TLS material from {ESP_PKI} to {VAR_PKI}"
        )),
        Ok(false) => {}
        Err(e) => fatal(&format!("moving {ESP_PKI} to {VAR_PKI}: {e}")),
    }
    if let Err(e) = ensure_rendered(Path::new(RENDERED)) {
        fatal(&format!("creating the managed files in {RENDERED}: {e}"));
    }
    for step in mounts::managed_files(Path::new(RENDERED)) {
        if let Err(e) = mounts::apply(&step) {
            fatal(&super::chain(&e));
        }
    }
    // Without `lo` up, 127.0.0.1 is unreachable: every local health check fails and the
    // watchdog, fed only while they pass, resets the machine.
    match loopback::bring_up() {
        Ok(true) => console::line("skerryd: loopback interface lo up"),
        Ok(false) => {}
        Err(e) => fatal(&format!("bringing up the loopback interface lo: {e}")),
    }
    let decision = run_daemon();
    if decision.fatal {
        console::line(&console::fatal_line(&decision.reason));
    }
    power::finish(decision.action, &decision.reason)
}

/// Starts the daemon and supervises it until it exits; what to do then.
fn run_daemon() -> power::Decision {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => fatal(&format!("PID 1's event loop: {e}")),
    };
    runtime.block_on(async {
        let signals = match reaper::Signals::install() {
            Ok(signals) => signals,
            Err(e) => fatal(&format!("installing PID 1's signal handlers: {e}")),
        };
        let _ = std::fs::remove_file(power::POWER_REQUEST);
        let child = match std::process::Command::new(DAEMON[0])
            .args(&DAEMON[1..])
            .spawn()
        {
            Ok(child) => child,
            Err(e) => fatal(&format!("starting {}: {e}", DAEMON[0])),
        };
        let Some(pid) = rustix::process::Pid::from_raw(child.id() as i32) else {
            fatal(&"the daemon has no process id");
        };
        let end = reaper::supervise(pid, reaper::Reap::All, signals).await;
        let request = power::read_request(Path::new(power::POWER_REQUEST));
        power::decide(request.as_deref(), &end.how)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pki_moves_once_and_only_when_var_has_none() {
        let dir = tempfile::tempdir().unwrap();
        let esp = dir.path().join("esp/skerry/pki");
        let var = dir.path().join("var/skerry/pki");
        std::fs::create_dir_all(&esp).unwrap();
        for name in PKI_FILES {
            std::fs::write(esp.join(name), name).unwrap();
        }
        assert!(move_pki(&esp, &var).unwrap());
        for name in PKI_FILES {
            assert_eq!(std::fs::read_to_string(var.join(name)).unwrap(), name);
            assert!(!esp.join(name).exists());
        }
        // Later boots: /var has it; a new file on the ESP is not taken.
        std::fs::write(esp.join("ca.crt"), "other").unwrap();
        assert!(!move_pki(&esp, &var).unwrap());
        assert_eq!(
            std::fs::read_to_string(var.join("ca.crt")).unwrap(),
            "ca.crt"
        );
        let none = dir.path().join("nothing");
        assert!(!move_pki(&none, &dir.path().join("v2/pki")).unwrap());
    }

    #[test]
    fn managed_files_exist_before_they_are_mounted() {
        let dir = tempfile::tempdir().unwrap();
        let etc = dir.path().join("var/skerry/etc");
        std::fs::create_dir_all(&etc).unwrap();
        std::fs::write(etc.join("hosts"), "127.0.0.1 kept\n").unwrap();
        let files = ensure_rendered(&etc).unwrap();
        assert_eq!(files.len(), 3);
        assert_eq!(
            std::fs::read_to_string(etc.join("hosts")).unwrap(),
            "127.0.0.1 kept\n"
        );
        assert_eq!(
            std::fs::read_to_string(etc.join("resolv.conf")).unwrap(),
            ""
        );
    }
}
