//! What machine to start: the QEMU program and its arguments, built from typed parts
//! (machine, CPU, firmware, drives, devices, reboot and watchdog policy, user-mode
//! networking). The runner adds the console and QMP itself, and `-nic none` unless the
//! machine has a [`UserNetwork`].

use std::ffi::OsString;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

/// Where a drive is attached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DriveBus {
    /// Flash bank `unit` (`-drive if=pflash,unit=N`): U-Boot's environment, OVMF's code
    /// and variables.
    Pflash { unit: u8 },
    /// A virtio block device (`-drive if=none,id=ID` plus `-device virtio-blk-pci`).
    Virtio { id: String },
}

/// A raw image attached to the machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drive {
    pub bus: DriveBus,
    pub file: PathBuf,
    /// The guest may read but not write it (QEMU opens the file read-only, so a guest
    /// write fails as it would on write-protected hardware).
    pub read_only: bool,
}

/// What the machine does when the guest or its watchdog resets it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetPolicy {
    /// A reset restarts the machine (QEMU's default).
    Restart,
    /// A reset makes QEMU exit (`-no-reboot`), like a power-off.
    Exit,
}

/// A port on the host's 127.0.0.1 forwarded to a TCP port of the guest (`hostfwd`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostForward {
    pub host_port: u16,
    pub guest_port: u16,
}

/// A TCP address the guest connects to, answered by a host command started per
/// connection with the connection on its stdin and stdout (`guestfwd=...-cmd:COMMAND`).
///
/// The other form, `guestfwd=...-tcp:HOST:PORT`, is one chardev connection opened when
/// QEMU starts: the guest's first connection works, every later one hangs (measured with
/// busybox `wget` under QEMU 10.0). A command per connection has no such limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestForward {
    pub guest_address: Ipv4Addr,
    pub guest_port: u16,
    /// Run by QEMU through `/bin/sh -c`; a comma in it is doubled for QEMU's parser.
    pub command: String,
}

/// QEMU's user-mode network (slirp) on a `virtio-net-pci` card.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UserNetwork {
    /// `restrict=on`: the guest reaches neither the host nor the outside, except through
    /// the forwards below (checked: a guest's connection to 10.0.2.2 is refused while
    /// both kinds of forward work).
    pub restrict: bool,
    pub host_forwards: Vec<HostForward>,
    pub guest_forwards: Vec<GuestForward>,
}

impl UserNetwork {
    /// The `-netdev` value for a network of id `id`.
    pub fn netdev(&self, id: &str) -> String {
        let mut spec = format!("user,id={id}");
        if self.restrict {
            spec.push_str(",restrict=on");
        }
        for f in &self.host_forwards {
            spec.push_str(&format!(
                ",hostfwd=tcp:127.0.0.1:{}-:{}",
                f.host_port, f.guest_port
            ));
        }
        for f in &self.guest_forwards {
            spec.push_str(&format!(
                ",guestfwd=tcp:{}:{}-cmd:{}",
                f.guest_address,
                f.guest_port,
                f.command.replace(',', ",,")
            ));
        }
        spec
    }
}

/// A QEMU machine description.
#[derive(Debug, Clone)]
pub struct MachineConfig {
    pub program: String,
    pub machine: String,
    pub cpu: Option<String>,
    pub memory_mib: u32,
    /// `-bios FILE` (U-Boot); OVMF comes as two pflash drives instead.
    pub bios: Option<PathBuf>,
    pub drives: Vec<Drive>,
    /// `-device` arguments, e.g. `i6300esb`.
    pub devices: Vec<String>,
    pub reset: ResetPolicy,
    /// `-action watchdog=ACTION` (`reset`, `poweroff`, `pause`, ...).
    pub watchdog_action: Option<String>,
    /// User-mode networking; `None` is `-nic none`.
    pub network: Option<UserNetwork>,
    /// Anything else, passed as is (after everything above).
    pub extra_args: Vec<String>,
}

impl MachineConfig {
    /// A machine of `program` (`qemu-system-aarch64`) and `machine` (`virt`), 256 MiB,
    /// no firmware, drives or devices yet, resets restart it.
    pub fn new(program: &str, machine: &str) -> MachineConfig {
        MachineConfig {
            program: program.to_owned(),
            machine: machine.to_owned(),
            cpu: None,
            memory_mib: 256,
            bios: None,
            drives: Vec::new(),
            devices: Vec::new(),
            reset: ResetPolicy::Restart,
            watchdog_action: None,
            network: None,
            extra_args: Vec::new(),
        }
    }

    /// Attaches `network` on a `virtio-net-pci` card (instead of `-nic none`).
    pub fn network(mut self, network: UserNetwork) -> Self {
        self.network = Some(network);
        self
    }

    pub fn cpu(mut self, cpu: &str) -> Self {
        self.cpu = Some(cpu.to_owned());
        self
    }

    pub fn memory_mib(mut self, mib: u32) -> Self {
        self.memory_mib = mib;
        self
    }

    /// An argument the typed parts do not cover, passed as is.
    pub fn extra_arg(mut self, arg: &str) -> Self {
        self.extra_args.push(arg.to_owned());
        self
    }

    pub fn bios(mut self, path: &Path) -> Self {
        self.bios = Some(path.to_owned());
        self
    }

    pub fn drive(mut self, bus: DriveBus, file: &Path, read_only: bool) -> Self {
        self.drives.push(Drive {
            bus,
            file: file.to_owned(),
            read_only,
        });
        self
    }

    pub fn device(mut self, device: &str) -> Self {
        self.devices.push(device.to_owned());
        self
    }

    pub fn reset(mut self, policy: ResetPolicy) -> Self {
        self.reset = policy;
        self
    }

    pub fn watchdog_action(mut self, action: &str) -> Self {
        self.watchdog_action = Some(action.to_owned());
        self
    }

    /// The arguments for this machine, its console on stdio and QMP on `qmp_socket`.
    pub fn args(&self, qmp_socket: &Path) -> Vec<OsString> {
        let mut args: Vec<OsString> = Vec::new();
        let mut push = |a: &str| args.push(a.into());
        // KVM guests hang on these machines; TCG is the one accelerator that works.
        for a in [
            "-M",
            &self.machine,
            "-accel",
            "tcg",
            "-m",
            &self.memory_mib.to_string(),
        ] {
            push(a);
        }
        if let Some(cpu) = &self.cpu {
            push("-cpu");
            push(cpu);
        }
        for a in [
            "-display",
            "none",
            "-monitor",
            "none",
            "-chardev",
            "stdio,id=console,signal=off",
            "-serial",
            "chardev:console",
        ] {
            push(a);
        }
        match &self.network {
            None => {
                push("-nic");
                push("none");
            }
            Some(network) => {
                push("-netdev");
                push(&network.netdev("n0"));
                push("-device");
                push("virtio-net-pci,netdev=n0");
            }
        }
        if self.reset == ResetPolicy::Exit {
            push("-no-reboot");
        }
        if let Some(action) = &self.watchdog_action {
            push("-action");
            push(&format!("watchdog={action}"));
        }
        let mut qmp = OsString::from("unix:");
        qmp.push(qmp_socket);
        qmp.push(",server=on,wait=off");
        args.push("-qmp".into());
        args.push(qmp);
        if let Some(bios) = &self.bios {
            args.push("-bios".into());
            args.push(bios.into());
        }
        for drive in &self.drives {
            drive_args(drive, &mut args);
        }
        for device in &self.devices {
            args.push("-device".into());
            args.push(device.into());
        }
        args.extend(self.extra_args.iter().map(OsString::from));
        args
    }
}

fn drive_args(drive: &Drive, args: &mut Vec<OsString>) {
    let read_only = if drive.read_only { "on" } else { "off" };
    let mut spec = match &drive.bus {
        DriveBus::Pflash { unit } => OsString::from(format!("if=pflash,unit={unit},")),
        DriveBus::Virtio { id } => OsString::from(format!("if=none,id={id},")),
    };
    spec.push(format!("format=raw,readonly={read_only},file="));
    // QEMU splits -drive options at commas; a comma in a path is doubled.
    spec.push(drive.file.as_os_str().to_string_lossy().replace(',', ",,"));
    args.push("-drive".into());
    args.push(spec);
    if let DriveBus::Virtio { id } = &drive.bus {
        args.push("-device".into());
        args.push(format!("virtio-blk-pci,drive={id}").into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn joined(config: &MachineConfig) -> String {
        config
            .args(Path::new("/run/q/qmp.sock"))
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn uboot_machine_arguments() {
        let config = MachineConfig::new("qemu-system-aarch64", "virt")
            .cpu("cortex-a57")
            .bios(Path::new("/usr/lib/u-boot/qemu_arm64/u-boot.bin"))
            .drive(
                DriveBus::Pflash { unit: 1 },
                Path::new("/t/flash1.img"),
                true,
            );
        let args = joined(&config);
        for part in [
            "-M virt -accel tcg -m 256 -cpu cortex-a57",
            "-chardev stdio,id=console,signal=off -serial chardev:console -nic none",
            "-qmp unix:/run/q/qmp.sock,server=on,wait=off",
            "-bios /usr/lib/u-boot/qemu_arm64/u-boot.bin",
            "-drive if=pflash,unit=1,format=raw,readonly=on,file=/t/flash1.img",
        ] {
            assert!(args.contains(part), "{part:?} missing in {args}");
        }
        assert!(!args.contains("-no-reboot"));
    }

    #[test]
    fn user_network_arguments_replace_no_nic() {
        let network = UserNetwork {
            restrict: true,
            host_forwards: vec![HostForward {
                host_port: 15000,
                guest_port: 50000,
            }],
            guest_forwards: vec![GuestForward {
                guest_address: Ipv4Addr::new(10, 0, 2, 100),
                guest_port: 8080,
                command: "busybox nc 127.0.0.1 18080,x".into(),
            }],
        };
        let config = MachineConfig::new("qemu-system-x86_64", "q35").network(network);
        let args = joined(&config);
        assert!(!args.contains("-nic none"), "{args}");
        assert!(
            args.contains(
                "-netdev user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:15000-:50000,\
                 guestfwd=tcp:10.0.2.100:8080-cmd:busybox nc 127.0.0.1 18080,,x \
                 -device virtio-net-pci,netdev=n0"
            ),
            "{args}"
        );
    }

    #[test]
    fn watchdog_machine_arguments() {
        let config = MachineConfig::new("qemu-system-x86_64", "q35")
            .drive(
                DriveBus::Virtio { id: "disk".into() },
                Path::new("/t/a,b.img"),
                false,
            )
            .device("i6300esb")
            .memory_mib(512)
            .reset(ResetPolicy::Exit)
            .watchdog_action("reset")
            .extra_arg("-snapshot");
        let args = joined(&config);
        for part in [
            "-no-reboot -action watchdog=reset",
            "-drive if=none,id=disk,format=raw,readonly=off,file=/t/a,,b.img -device virtio-blk-pci,drive=disk",
            "-device i6300esb -snapshot",
            "-m 512",
        ] {
            assert!(args.contains(part), "{part:?} missing in {args}");
        }
    }
}
