//! **QEMU boots (slow: two TCG boots of a real image, ≈2–4 minutes with the image build).**
//!
//! skerryd as PID 1 on a real kernel: `skerryctl image build` makes the qemu-x86_64 disk
//! with the static skerryd (`scripts/build-static`, run from here: a no-op when it is up
//! to date, ≈7–10 minutes from cold), and QEMU (q35, TCG, OVMF, GRUB, i6300esb, virtio
//! disk and a user-mode network that only forwards a host port to the API) boots it:
//!
//! 1. first boot: the initramfs arms the watchdog and switches to slot A, the system
//!    stage grows and formats `/var` (`SKERRY-VAR formatted`), the daemon gets its
//!    address from QEMU's DHCP server and serves (`SKERRY-READY`); the API answers
//!    from the host through the forwarded port with the TLS material the image put on
//!    the ESP; `Reboot` ends in `SKERRY-POWER reboot` and a guest reset;
//! 2. second boot of the same disk: `/var` is kept (`SKERRY-VAR mounted`); `Shutdown`
//!    ends in `SKERRY-POWER shutdown` and a guest power-off.
//!
//! Prints the kernel → PID 1 and PID 1 → API-ready times of each boot.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use skerry_api::{pb, ClientTls};
use skerry_hil::qemu::files::{need_file, need_tool, ovmf_vars_copy, OVMF_CODE_4M};
use skerry_hil::qemu::{DriveBus, MachineConfig, Qemu, ResetPolicy};

/// Generous: OVMF and GRUB take 5–8 s under TCG, the kernel ≈5 s, a first boot's mke2fs
/// a few more, and the machine may be loaded by other builds.
const BOOT: Duration = Duration::from_secs(240);

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The static skerryd and skerryctl, built by `scripts/build-static` (or taken from
/// `$SKERRY_STATIC_DIR`).
fn static_programs() -> PathBuf {
    if let Some(dir) = std::env::var_os("SKERRY_STATIC_DIR") {
        return PathBuf::from(dir);
    }
    let started = Instant::now();
    let out = Command::new(workspace().join("scripts/build-static"))
        .output()
        .expect("scripts/build-static runs");
    assert!(
        out.status.success(),
        "scripts/build-static failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("scripts/build-static took {:.1?}", started.elapsed());
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

fn run(command: &mut Command) -> String {
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("{command:?}: {e}"));
    assert!(
        out.status.success(),
        "{command:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The factory config: DHCP on the virtio link, and the watchdog the initramfs armed
/// fed by the daemon (without a WatchdogConfig the daemon does not open it, and the
/// armed i6300esb resets the machine 30 s later).
const CONFIG: &str = "\
apiVersion: skerry.dev/v1alpha1
kind: MachineConfig
hostname: pid1-qemu
---
apiVersion: skerry.dev/v1alpha1
kind: NetworkConfig
links:
  - name: eth0
    dhcp: true
---
apiVersion: skerry.dev/v1alpha1
kind: WatchdogConfig
device:
  linux:
    path: /dev/watchdog0
timeout: 30s
";

struct Image {
    disk: PathBuf,
    pki: skerry_hil::daemon::pki::Pki,
}

/// Builds the disk with a stripped copy of the production skerryd (the debug line
/// tables make it 100 MiB; the initramfs holds it too) and a PKI on the ESP.
fn build_image(dir: &Path) -> Image {
    for (tool, package) in [
        ("strip", "binutils"),
        ("sgdisk", "gdisk"),
        ("mke2fs", "e2fsprogs"),
        ("mkfs.vfat", "dosfstools"),
        ("mcopy", "mtools"),
        ("grub-mkimage", "grub-common"),
        ("depmod", "kmod"),
    ] {
        need_tool(tool, package).unwrap();
    }
    let programs = static_programs();
    let skerryd = dir.join("skerryd");
    std::fs::copy(programs.join("skerryd"), &skerryd).unwrap();
    run(Command::new("strip").arg(&skerryd));
    let version = run(Command::new(&skerryd).arg("--version"));
    assert!(version.starts_with("skerryd "), "{version}");
    assert!(
        !version.contains("fault-hooks"),
        "a production build: {version}"
    );
    let pki_dir = dir.join("pki");
    let pki = skerry_hil::daemon::pki::Pki::create(&pki_dir).unwrap();
    let config = dir.join("config.yaml");
    std::fs::write(&config, CONFIG).unwrap();
    let disk = dir.join("disk.img");
    let started = Instant::now();
    run(Command::new(programs.join("skerryctl"))
        .args([
            "image",
            "build",
            "--board",
            "qemu-x86_64",
            "--version",
            "1.0.0",
        ])
        .arg("--out")
        .arg(&disk)
        .arg("--skerryd")
        .arg(&skerryd)
        .arg("--config")
        .arg(&config)
        .arg("--pki")
        .arg(&pki_dir));
    eprintln!("image build took {:.1?}", started.elapsed());
    // A disk larger than the image, as a real one is: /var grows into the rest.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&disk)
        .unwrap()
        .set_len(3 << 30)
        .unwrap();
    Image { disk, pki }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn machine(disk: &Path, vars: &Path, port: u16) -> MachineConfig {
    MachineConfig::new("qemu-system-x86_64", "q35")
        .memory_mib(512)
        .reset(ResetPolicy::Exit)
        .watchdog_action("reset")
        .drive(DriveBus::Pflash { unit: 0 }, Path::new(OVMF_CODE_4M), true)
        .drive(DriveBus::Pflash { unit: 1 }, vars, false)
        .drive(DriveBus::Virtio { id: "disk".into() }, disk, false)
        .device("i6300esb")
        .extra_arg("-netdev")
        .extra_arg(&format!(
            "user,id=net0,restrict=on,hostfwd=tcp:127.0.0.1:{port}-:50000"
        ))
        .extra_arg("-device")
        .extra_arg("virtio-net-pci,netdev=net0")
}

/// The seconds of the kernel's `[    3.459655]` timestamp on the line with `needle`.
fn kernel_time(transcript: &str, needle: &str) -> Option<f64> {
    let line = transcript.lines().find(|l| l.contains(needle))?;
    let open = line.find('[')?;
    let close = line.find(']')?;
    line[open + 1..close].trim().parse().ok()
}

struct Boot {
    qemu: Qemu,
    kernel_to_pid1: f64,
    pid1_to_ready: Duration,
}

/// Boots until `SKERRY-READY`, checking the lines on the way.
fn boot_to_ready(config: &MachineConfig, dir: &Path, var_word: &str) -> Boot {
    let mut qemu = Qemu::start(config, dir).unwrap();
    let console = qemu.console();
    console.expect("SKERRY-BOOT slot=A", BOOT).unwrap();
    console
        .expect("SKERRY-INIT stage=initramfs slot=A", BOOT)
        .unwrap();
    let pid1 = Instant::now();
    console
        .expect(
            "SKERRY-WATCHDOG armed device=/dev/watchdog0 timeout=30",
            BOOT,
        )
        .unwrap();
    console
        .expect("SKERRY-INIT stage=system slot=A", BOOT)
        .unwrap();
    console
        .expect(&format!("SKERRY-VAR {var_word} dev=/dev/vda4"), BOOT)
        .unwrap();
    console
        .expect("SKERRY-READY slot=A version=1.0.0 api=0.0.0.0:50000", BOOT)
        .unwrap();
    let pid1_to_ready = pid1.elapsed();
    let transcript = console.transcript();
    let kernel_to_pid1 = kernel_time(&transcript, "Run /init as init process").unwrap_or(f64::NAN);
    assert!(!transcript.contains("SKERRY-FATAL"), "{transcript}");
    Boot {
        qemu,
        kernel_to_pid1,
        pid1_to_ready,
    }
}

async fn client(
    image: &Image,
    port: u16,
) -> pb::machine_service_client::MachineServiceClient<tonic::transport::Channel> {
    let admin = image.pki.client("os:admin").unwrap();
    let tls = ClientTls::from_pem(&image.pki.ca, &admin.cert, &admin.key, "127.0.0.1");
    // The guest listens a moment after its line; the forward accepts before that.
    let started = Instant::now();
    loop {
        match skerry_api::connect(&format!("https://127.0.0.1:{port}"), &tls).await {
            Ok(mut c) => match c.version(pb::VersionRequest {}).await {
                Ok(_) => return c,
                Err(e) if started.elapsed() < Duration::from_secs(60) => {
                    eprintln!("Version not answered yet: {e}");
                }
                Err(e) => panic!("Version: {e}"),
            },
            Err(e) if started.elapsed() < Duration::from_secs(60) => {
                eprintln!("not connected yet: {e}");
            }
            Err(e) => panic!("connecting to the guest API: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn shutdown_reason(qemu: &mut Qemu) -> String {
    let event = qemu.qmp().wait_event("SHUTDOWN", BOOT).unwrap();
    event.data["reason"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pid1_boots_serves_reboots_keeps_var_and_powers_off() {
    need_tool(
        "qemu-system-x86_64",
        "qemu-system-x86 (scripts/deps/qemu.backports.apt)",
    )
    .unwrap();
    need_file(OVMF_CODE_4M, "ovmf").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let image = build_image(dir.path());
    let vars = ovmf_vars_copy(dir.path()).unwrap();
    let port = free_port();
    let config = machine(&image.disk, &vars, port);

    // First boot: /var formatted, the API answers, Reboot.
    let mut first = boot_to_ready(&config, dir.path(), "formatted");
    let mut api = client(&image, port).await;
    let version = api
        .version(pb::VersionRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(version.board, "qemu-x86_64", "{version:?}");
    assert_eq!(version.booted_slot, "A", "{version:?}");
    api.reboot(pb::RebootRequest {}).await.unwrap();
    first
        .qemu
        .console()
        .expect("SKERRY-POWER reboot reason=request", BOOT)
        .unwrap();
    assert_eq!(shutdown_reason(&mut first.qemu), "guest-reset");
    first.qemu.wait_exit(BOOT).unwrap();
    let transcript = first.qemu.console().transcript();
    assert!(
        transcript.contains("skerryd: grew /dev/vda4"),
        "{transcript}"
    );
    drop(first.qemu);

    // Second boot of the same disk: /var kept; Shutdown.
    let mut second = boot_to_ready(&config, dir.path(), "mounted");
    let mut api = client(&image, port).await;
    api.shutdown(pb::ShutdownRequest {}).await.unwrap();
    second
        .qemu
        .console()
        .expect("SKERRY-POWER shutdown reason=request", BOOT)
        .unwrap();
    assert_eq!(shutdown_reason(&mut second.qemu), "guest-shutdown");
    second.qemu.wait_exit(BOOT).unwrap();

    eprintln!("| boot | kernel → PID 1 (s) | PID 1 → SKERRY-READY (s) |");
    eprintln!("| --- | --- | --- |");
    eprintln!(
        "| first (formats /var) | {:.2} | {:.1} |",
        first.kernel_to_pid1,
        first.pid1_to_ready.as_secs_f64()
    );
    eprintln!(
        "| second | {:.2} | {:.1} |",
        second.kernel_to_pid1,
        second.pid1_to_ready.as_secs_f64()
    );
}
