//! PID 1's console: its lines (`SKERRY-…`, docs/os-image.md) go to `/dev/console` as
//! one write each, so the boards can match them whole; the daemon it starts inherits
//! the same console for its log. A panic anywhere in PID 1 is a `SKERRY-FATAL` line
//! followed by a reboot ([`install_panic_hook`]).

use std::io::Write as _;

/// Points stdin, stdout and stderr at `/dev/console`: an initramfs without a
/// `/dev/console` node leaves PID 1 without them until devtmpfs is mounted.
pub fn attach() {
    if let Ok(console) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/console")
    {
        let _ = rustix::stdio::dup2_stdin(&console);
        let _ = rustix::stdio::dup2_stdout(&console);
        let _ = rustix::stdio::dup2_stderr(&console);
    }
}

/// Writes one console line.
pub fn line(text: &str) {
    let mut out = String::with_capacity(text.len() + 1);
    out.push_str(text);
    out.push('\n');
    let _ = std::io::stdout().lock().write_all(out.as_bytes());
    let _ = std::io::stdout().flush();
}

/// A `SKERRY-FATAL` line for `message` (one line: newlines become spaces).
pub fn fatal_line(message: &str) -> String {
    format!("SKERRY-FATAL {}", message.replace(['\n', '\r'], " "))
}

/// From here on a panic in PID 1 is logged and reboots the machine: PID 1 must never
/// exit (the kernel would panic with "Attempted to kill init" and only `panic=` would
/// bring it back, without our line on the console).
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        line(&fatal_line(&format!("PID 1 panicked: {info}")));
        super::power::finish(super::power::PowerAction::Reboot, "fatal");
    }));
}
