//! A running QEMU machine: the process, its serial console and its QMP session, in a
//! scratch directory of its own. Dropping it kills the process (by its PID, through the
//! child handle) and waits for it, so a failing test leaves no QEMU behind.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::qemu::config::MachineConfig;
use crate::qemu::console::Console;
use crate::qemu::error::QemuError;
use crate::qemu::qmp::Qmp;

/// How long QEMU may take to open its QMP socket.
const QMP_CONNECT: Duration = Duration::from_secs(20);

/// A started machine.
#[derive(Debug)]
pub struct Qemu {
    child: Child,
    console: Console,
    qmp: Qmp,
    stderr_log: PathBuf,
}

impl Qemu {
    /// Starts `config`, with its QMP socket and stderr log in `run_dir` (a directory the
    /// caller owns, e.g. a `tempfile::TempDir`).
    pub fn start(config: &MachineConfig, run_dir: &Path) -> Result<Qemu, QemuError> {
        crate::qemu::files::need_tool(&config.program, qemu_package(&config.program))?;
        let socket = run_dir.join("qmp.sock");
        let stderr_log = run_dir.join("qemu.stderr");
        let _ = std::fs::remove_file(&socket);
        let stderr = std::fs::File::create(&stderr_log).map_err(|source| QemuError::Io {
            what: "creating the QEMU log",
            path: stderr_log.clone(),
            source,
        })?;
        let mut child = Command::new(&config.program)
            .args(config.args(&socket))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .map_err(|source| QemuError::Spawn {
                program: config.program.clone(),
                source,
            })?;
        let (Some(stdout), stdin) = (child.stdout.take(), child.stdin.take()) else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(QemuError::Spawn {
                program: config.program.clone(),
                source: std::io::Error::other("no stdout pipe"),
            });
        };
        let console = Console::new(stdout, stdin);
        let qmp = match Qmp::connect(&socket, QMP_CONNECT) {
            Ok(q) => q,
            Err(e) => {
                let _ = child.kill();
                let status = child.wait();
                return Err(match status {
                    Ok(status) if !status.success() => QemuError::Exited {
                        status: status.to_string(),
                        stderr: std::fs::read_to_string(&stderr_log).unwrap_or_default(),
                    },
                    _ => e,
                });
            }
        };
        Ok(Qemu {
            child,
            console,
            qmp,
            stderr_log,
        })
    }

    /// The serial console.
    pub fn console(&mut self) -> &mut Console {
        &mut self.console
    }

    /// Everything the console printed so far.
    pub fn console_transcript(&self) -> String {
        self.console.transcript()
    }

    /// The QMP session.
    pub fn qmp(&mut self) -> &mut Qmp {
        &mut self.qmp
    }

    /// The process id (for a test that wants to see it gone).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits up to `timeout` for QEMU to exit on its own (a guest power-off, or a reset
    /// under `-no-reboot`).
    pub fn wait_exit(&mut self, timeout: Duration) -> Result<ExitStatus, QemuError> {
        let started = Instant::now();
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => {
                    self.console.finish();
                    return Ok(status);
                }
                Ok(None) if started.elapsed() >= timeout => {
                    return Err(QemuError::ExitTimeout { waited: timeout })
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                Err(source) => {
                    return Err(QemuError::Io {
                        what: "waiting for QEMU",
                        path: PathBuf::from(format!("pid {}", self.child.id())),
                        source,
                    })
                }
            }
        }
    }

    /// Whether QEMU has exited (a guest power-off ends it), without waiting.
    pub fn has_exited(&mut self) -> bool {
        !matches!(self.child.try_wait(), Ok(None))
    }

    /// Cuts the power: SIGKILL to QEMU's process (by its PID, through the child handle),
    /// without asking the guest or QEMU, and waits for it to be gone. What the guest had
    /// not written to its disk image is lost, as on a real power cut.
    pub fn power_cut(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        self.console.finish();
    }

    /// Ends QEMU through QMP `quit` and waits for it, so its drives are closed and every
    /// write the guest made is in the image files.
    pub fn quit(mut self) -> Result<ExitStatus, QemuError> {
        self.qmp.quit()?;
        self.wait_exit(Duration::from_secs(20))
    }

    /// What QEMU wrote on stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_log).unwrap_or_default()
    }
}

impl Drop for Qemu {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        self.console.finish();
    }
}

/// The Debian package of a QEMU system emulator.
fn qemu_package(program: &str) -> &'static str {
    match program {
        "qemu-system-aarch64" | "qemu-system-arm" => "qemu-system-arm (from bookworm-backports)",
        "qemu-system-x86_64" | "qemu-system-i386" => "qemu-system-x86 (from bookworm-backports)",
        _ => "qemu-system (from bookworm-backports)",
    }
}
