//! Interop with RAUC itself (its D-Bus service and CLI, U-Boot backend): RAUC reads the
//! environment we write with its own meaning, and what RAUC's `mark-bad` writes (it
//! also takes the slot out of `BOOT_ORDER`) loads as a bad slot.
//!
//! RAUC runs `fw_printenv`/`fw_setenv` from `PATH`; a wrapper directory points them at
//! this test's `fw_env.config`, so nothing outside the temp directory is touched.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use skerry_boot_state::uboot::{UbootEnvStore, UbootLayout};
use skerry_boot_state::{BootState, BootStore, FileMedium, SlotName, SlotStatus};

fn need(tool: &str, package: &str) {
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

/// A private session bus and a RAUC service on it; both stopped (by PID) on drop.
struct Rauc {
    bus: String,
    dbus_pid: u32,
    service: Child,
}

impl Rauc {
    fn start(dir: &Path, conf: &Path, path_prefix: Option<&Path>) -> Rauc {
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

    fn cli(&self, args: &[&str]) -> String {
        self.try_cli(args)
            .unwrap_or_else(|e| panic!("rauc {args:?} failed: {e}"))
    }

    /// RAUC's primary slot's bootname and each bootname's boot status.
    fn status(&self) -> (String, Vec<(String, String)>) {
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

fn system_conf(dir: &Path, bootloader_lines: &str) -> PathBuf {
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

fn statuses(a: &str, b: &str) -> Vec<(String, String)> {
    vec![("A".into(), a.into()), ("B".into(), b.into())]
}

#[test]
fn rauc_reads_our_uboot_env_and_its_mark_bad_loads() {
    need("fw_setenv", "libubootenv-tool");
    let dir = tempfile::tempdir().unwrap();
    let env = dir.path().join("uboot.env");
    let layout = UbootLayout {
        offset: 0,
        size: 0x4000,
        redundant: true,
    };
    let config = dir.path().join("fw_env.config");
    std::fs::write(
        &config,
        format!("{e} 0x0 0x4000\n{e} 0x4000 0x4000\n", e = env.display()),
    )
    .unwrap();
    let defenv = dir.path().join("defenv");
    std::fs::write(&defenv, "").unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    for tool in ["fw_printenv", "fw_setenv"] {
        let wrapper = bin.join(tool);
        std::fs::write(
            &wrapper,
            format!(
                "#!/bin/sh\nexec /usr/bin/{tool} -c '{}' -f '{}' \"$@\"\n",
                config.display(),
                defenv.display()
            ),
        )
        .unwrap();
        let status = Command::new("chmod")
            .arg("+x")
            .arg(&wrapper)
            .status()
            .unwrap();
        assert!(status.success());
    }

    let (a, b) = (SlotName::new("A").unwrap(), SlotName::new("B").unwrap());
    let mut store = UbootEnvStore::new(FileMedium::create(&env), layout);
    let mut state = BootState::new(&[a.clone(), b.clone()], 3).unwrap();
    store.commit(&state).unwrap();
    let conf = system_conf(dir.path(), "bootloader=uboot");
    let rauc = Rauc::start(dir.path(), &conf, Some(&bin));
    assert_eq!(rauc.status(), ("A".into(), statuses("good", "bad")));

    // Our trial of B: RAUC sees B as bootable and primary.
    state.begin_trial(&b).unwrap();
    store.commit(&state).unwrap();
    assert_eq!(rauc.status(), ("B".into(), statuses("good", "good")));

    // RAUC's mark-bad takes B out of BOOT_ORDER; we load it as bad, at the end.
    rauc.cli(&["status", "mark-bad", "other"]);
    let loaded = store.load().unwrap();
    assert_eq!(loaded.status(&b).unwrap(), SlotStatus::Bad);
    assert_eq!(
        loaded.order().cloned().collect::<Vec<_>>(),
        vec![a.clone(), b.clone()]
    );

    // A new trial puts B back in front for both; using up its attempts makes it bad
    // for RAUC too, and its primary falls back to A.
    let mut state = loaded;
    state.begin_trial(&b).unwrap();
    store.commit(&state).unwrap();
    assert_eq!(rauc.status().0, "B");
    for _ in 0..3 {
        assert_eq!(store.simulate_power_on().unwrap(), b);
    }
    assert_eq!(rauc.status(), ("A".into(), statuses("good", "bad")));
    assert_eq!(store.simulate_power_on().unwrap(), a);
}
