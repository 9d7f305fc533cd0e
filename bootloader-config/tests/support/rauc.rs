//! RAUC itself for the interop tests: a private session bus with a RAUC service on it,
//! its CLI, and a two-slot `system.conf` for either bootloader backend.
//!
//! Uses [`super::tools`], so a test file including this module includes that one too.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::tools::need;

/// A private session bus and a RAUC service on it; both stopped (by PID) on drop.
pub struct Rauc {
    bus: String,
    dbus_pid: u32,
    service: Child,
}

impl Rauc {
    /// Starts the bus and `rauc service` with `conf`, mounting under `dir`; with
    /// `path_prefix`, the service finds its tools (`fw_setenv`, ...) there first.
    /// Returns once the service answers `rauc status`.
    pub fn start(dir: &Path, conf: &Path, path_prefix: Option<&Path>) -> Rauc {
        need("rauc", "rauc");
        need("dbus-daemon", "dbus-daemon");
        let out = Command::new("dbus-daemon")
            .args(["--session", "--fork", "--print-address=1", "--print-pid=1"])
            .output()
            .expect("start dbus-daemon");
        let text = String::from_utf8(out.stdout).unwrap();
        let mut lines = text.lines();
        let bus = lines.next().expect("bus address").to_owned();
        let dbus_pid = lines.next().expect("bus pid").trim().parse().unwrap();
        let mount = dir.join("mnt");
        std::fs::create_dir_all(&mount).unwrap();
        let mut cmd = Command::new("rauc");
        cmd.arg(format!("--conf={}", conf.display()))
            .arg(format!("--mount={}", mount.display()))
            .args(["service", "--override-boot-slot=A"])
            .env("DBUS_SESSION_BUS_ADDRESS", &bus)
            .env("DBUS_STARTER_BUS_TYPE", "session")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(prefix) = path_prefix {
            let path = std::env::var("PATH").unwrap_or_default();
            cmd.env("PATH", format!("{}:{path}", prefix.display()));
        }
        let service = cmd.spawn().expect("start rauc service");
        let rauc = Rauc {
            bus,
            dbus_pid,
            service,
        };
        let started = Instant::now();
        while rauc.try_cli(&["status", "--output-format=json"]).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "rauc service did not answer"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        rauc
    }

    fn try_cli(&self, args: &[&str]) -> Result<String, String> {
        let out = Command::new("rauc")
            .args(args)
            .env("DBUS_SESSION_BUS_ADDRESS", &self.bus)
            .env("DBUS_STARTER_BUS_TYPE", "session")
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// Runs the `rauc` CLI against this service; a failure fails the test.
    pub fn cli(&self, args: &[&str]) -> String {
        self.try_cli(args)
            .unwrap_or_else(|e| panic!("rauc {args:?} failed: {e}"))
    }

    /// RAUC's primary slot's bootname and each bootname's boot status.
    pub fn status(&self) -> (String, Vec<(String, String)>) {
        let json: serde_json::Value =
            serde_json::from_str(&self.cli(&["status", "--output-format=json"])).unwrap();
        let primary = json["boot_primary"].as_str().unwrap_or_default().to_owned();
        let mut slots = Vec::new();
        let mut primary_name = String::new();
        for entry in json["slots"].as_array().unwrap() {
            for (id, slot) in entry.as_object().unwrap() {
                let name = slot["bootname"].as_str().unwrap().to_owned();
                if *id == primary {
                    primary_name = name.clone();
                }
                slots.push((name, slot["boot_status"].as_str().unwrap().to_owned()));
            }
        }
        slots.sort();
        (primary_name, slots)
    }
}

impl Drop for Rauc {
    fn drop(&mut self) {
        let _ = self.service.kill();
        let _ = self.service.wait();
        let _ = Command::new("kill").arg(self.dbus_pid.to_string()).status();
    }
}

/// Writes a `system.conf` with `bootloader_lines` and two raw file slots, bootnames `A`
/// and `B`, in `dir`.
pub fn system_conf(dir: &Path, bootloader_lines: &str) -> PathBuf {
    let mut conf = format!("[system]\ncompatible=skerry-test\n{bootloader_lines}\n");
    for (i, name) in ["A", "B"].iter().enumerate() {
        let device = dir.join(format!("slot{name}.img"));
        std::fs::write(&device, vec![0; 4096]).unwrap();
        conf.push_str(&format!(
            "\n[slot.rootfs.{i}]\ndevice={}\ntype=raw\nbootname={name}\n",
            device.display()
        ));
    }
    let path = dir.join("system.conf");
    std::fs::write(&path, conf).unwrap();
    path
}

/// The boot statuses of slots `A` and `B` as [`Rauc::status`] lists them.
pub fn statuses(a: &str, b: &str) -> Vec<(String, String)> {
    vec![("A".into(), a.into()), ("B".into(), b.into())]
}
