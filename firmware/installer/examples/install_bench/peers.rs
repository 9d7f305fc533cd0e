//! The peers: RAUC 1.8 (plain bundle into a file slot, its service on a session D-Bus,
//! as the lab notes describe), casync and `zstd --patch-from`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::Error;

const TOOLS: [&str; 8] = [
    "rauc",
    "casync",
    "zstd",
    "mke2fs",
    "mksquashfs",
    "openssl",
    "dbus-daemon",
    "/usr/bin/time",
];

/// Fails naming what to install when a tool is missing.
pub fn check_tools() -> Result<(), Error> {
    crate::bench_common::check_tools(&TOOLS)
}

use crate::bench_common::run;

/// A RAUC service with a plain bundle ready to install.
pub struct Rauc {
    bundle: PathBuf,
    bus: String,
    dbus_pid: u32,
    service: Child,
}

impl Rauc {
    pub fn prepare(w: &Path, image: &Path) -> Result<Self, Error> {
        let dir = w.join("rauc");
        let content = dir.join("content");
        std::fs::create_dir_all(&content)?;
        std::fs::create_dir_all(dir.join("mnt"))?;
        std::fs::create_dir_all(dir.join("data"))?;
        run(Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-subj",
                "/CN=skerry-bench",
                "-days",
                "30",
                "-keyout",
            ])
            .arg(dir.join("key.pem"))
            .arg("-out")
            .arg(dir.join("cert.pem")))?;
        std::fs::copy(image, content.join("rootfs.img"))?;
        std::fs::write(
            content.join("manifest.raucm"),
            "[update]\ncompatible=skerry-bench\nversion=1.0.0\n\n[bundle]\nformat=plain\n\n[image.rootfs]\nfilename=rootfs.img\n",
        )?;
        let bundle = dir.join("bundle.raucb");
        run(Command::new("rauc")
            .arg("bundle")
            .arg(format!("--cert={}", dir.join("cert.pem").display()))
            .arg(format!("--key={}", dir.join("key.pem").display()))
            .arg(&content)
            .arg(&bundle))?;
        std::fs::remove_dir_all(&content)?;
        let size = std::fs::metadata(image)?.len();
        for slot in ["slotA.img", "slotB.img"] {
            std::fs::File::create(dir.join(slot))?.set_len(size)?;
        }
        let conf = dir.join("system.conf");
        std::fs::write(
            &conf,
            format!(
                "[system]\ncompatible=skerry-bench\nbootloader=noop\ndata-directory={d}/data\n\n[keyring]\npath={d}/cert.pem\n\n[slot.rootfs.0]\ndevice={d}/slotA.img\ntype=raw\nbootname=A\n\n[slot.rootfs.1]\ndevice={d}/slotB.img\ntype=raw\nbootname=B\n",
                d = dir.display()
            ),
        )?;
        let out = run(Command::new("dbus-daemon").args([
            "--session",
            "--fork",
            "--print-address=1",
            "--print-pid=1",
        ]))?;
        let mut lines = out.lines();
        let bus = lines
            .next()
            .ok_or("dbus-daemon printed no address")?
            .to_string();
        let dbus_pid: u32 = lines
            .next()
            .ok_or("dbus-daemon printed no pid")?
            .trim()
            .parse()?;
        let service = Command::new("rauc")
            .arg(format!("--conf={}", conf.display()))
            .arg(format!("--mount={}", dir.join("mnt").display()))
            .args(["service", "--override-boot-slot=A"])
            .env("DBUS_SESSION_BUS_ADDRESS", &bus)
            .env("DBUS_STARTER_BUS_TYPE", "session")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let rauc = Self {
            bundle,
            bus,
            dbus_pid,
            service,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while rauc.rauc(&["status"]).is_err() {
            if Instant::now() > deadline {
                return Err("the RAUC service did not come up".into());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(rauc)
    }

    fn rauc(&self, args: &[&str]) -> Result<String, Error> {
        run(Command::new("rauc")
            .args(args)
            .env("DBUS_SESSION_BUS_ADDRESS", &self.bus)
            .env("DBUS_STARTER_BUS_TYPE", "session"))
    }

    /// Seconds `rauc install` takes.
    pub fn install(&self) -> Result<f64, Error> {
        let started = Instant::now();
        self.rauc(&["install", &self.bundle.display().to_string()])?;
        Ok(started.elapsed().as_secs_f64())
    }

    pub fn stop(mut self) {
        let _ = self.service.kill();
        let _ = self.service.wait();
        let _ = Command::new("kill").arg(self.dbus_pid.to_string()).status();
    }
}

pub use crate::bench_common::casync_delta;

/// Size of `zstd -3 --long=28 --patch-from=v1 v2`.
pub fn zstd_patch(w: &Path, v1: &Path, v2: &Path) -> Result<u64, Error> {
    let patch = w.join("v2.patch.zst");
    run(Command::new("zstd")
        .args(["-q", "-f", "-3", "--long=28"])
        .arg(format!("--patch-from={}", v1.display()))
        .arg(v2)
        .arg("-o")
        .arg(&patch))?;
    Ok(std::fs::metadata(&patch)?.len())
}
