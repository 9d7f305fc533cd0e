//! The board definition as it is written in `boards/*.toml`: every table and key is
//! decoded strictly (an unknown key is an error), and [`crate::validate`] then checks the
//! whole definition.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::size::Size;

/// One board: what Skerry needs to know to build a disk for it, boot it and run on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BoardDefinition {
    /// The board's name as releases target it and as its file is named (`qemu-x86_64`).
    pub name: String,
    /// One line for people.
    pub description: String,
    /// The CPU architecture its kernel and binaries are built for.
    pub arch: Arch,
    /// The bootloader and where it keeps the A/B boot state.
    pub bootloader: Bootloader,
    /// The disk and its partitions.
    pub disk: Disk,
    /// Files the boot chain reads, and in which partition each lives.
    #[serde(default)]
    pub boot_files: Vec<BootFile>,
    /// Kernel modules the initramfs loads, in order (the watchdog driver first).
    #[serde(default)]
    pub modules: Vec<String>,
    /// The kernel an image for this board is built with (a pinned Debian package).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel: Option<Kernel>,
    /// The slot's root is read through dm-verity: the initramfs refuses to boot a slot
    /// whose kernel command line lacks valid verity parameters (docs/os-image.md).
    /// Needs `dm-verity` in `modules`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub verified_root: bool,
    /// The watchdog that resets a hung machine.
    pub watchdog: Watchdog,
    /// Where boot and daemon logs go.
    pub console: Console,
    /// Status LEDs.
    #[serde(default)]
    pub leds: Vec<Led>,
    /// Raspberry Pi specifics; required when the bootloader is `rpi-tryboot`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raspberry_pi: Option<RaspberryPi>,
}

/// The kernel an image is built with: one Debian package at one exact version, so two
/// builds of a release get the same kernel byte for byte.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Kernel {
    /// The Debian package, `linux-image-6.1.0-48-amd64`.
    pub package: String,
    /// Its exact version, `6.1.172-1`.
    pub version: String,
}

/// A CPU architecture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Arch {
    /// 64-bit x86 (PCs, industrial boxes, QEMU q35).
    X86_64,
    /// 64-bit Arm (Raspberry Pi 4 and 5, most SoMs).
    Aarch64,
}

/// The bootloader and its boot-state store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bootloader {
    /// Which bootloader picks the slot.
    pub kind: BootloaderKind,
    /// The boot-state store as `skerryctl boot --store` takes it, with placeholders for
    /// the disk and its partitions: `{disk}` (the whole disk's device), `{dev:NAME}` (the
    /// block device of partition NAME) and `{mnt:NAME}` (where partition NAME is mounted).
    /// E.g. `grub:{mnt:esp}/EFI/BOOT/grubenv` or `tryboot:{mnt:firmware},A=2,B=3`.
    pub boot_state: String,
}

/// Which bootloader picks the slot; each keeps its state in one store kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BootloaderKind {
    /// UEFI firmware starting a standalone GRUB-EFI; state in a GRUB environment block.
    GrubEfi,
    /// U-Boot; state in its environment.
    Uboot,
    /// The Raspberry Pi firmware's `autoboot.txt` and `reboot tryboot`.
    RpiTryboot,
    /// ChromeOS-style GPT attributes (priority, tries, successful) on the slot partitions.
    GptVboot,
}

impl BootloaderKind {
    /// The store kind (`KIND:` of a store spec) this bootloader reads.
    pub fn store_kind(self) -> &'static str {
        match self {
            BootloaderKind::GrubEfi => "grub",
            BootloaderKind::Uboot => "uboot",
            BootloaderKind::RpiTryboot => "tryboot",
            BootloaderKind::GptVboot => "gpt",
        }
    }
}

/// The disk the board boots from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Disk {
    /// The partition table.
    pub table: PartitionTable,
    /// The smallest disk this layout is for; every partition but the state partition
    /// must fit in it, and the state partition grows to the end of the real disk.
    pub min_size: Size,
    /// The partitions in on-disk order; the first is partition number 1.
    pub partitions: Vec<Partition>,
}

/// A partition table format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PartitionTable {
    /// GUID partition table (UEFI; the Raspberry Pi 4/5 EEPROM reads it too).
    Gpt,
}

/// One partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Partition {
    /// Its GPT name (`esp`, `root-a`, `var`), unique on the disk.
    pub name: String,
    /// What it is for.
    pub role: Role,
    /// For a slot partition: the slot it belongs to (`A`, `B`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot: Option<String>,
    /// For a slot partition: which part of the slot it holds (`root`, `boot`); each slot
    /// has the same parts, and boot files name them as `slot:PART`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// Where it starts; by default right after the previous one (the first at 1MiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<Size>,
    /// Its size; for the state partition the least it may have (it grows to the end of
    /// the disk on first boot).
    pub size: Size,
    /// The filesystem in it.
    pub filesystem: Filesystem,
    /// The GPT partition type.
    #[serde(rename = "type")]
    pub kind: PartitionType,
}

/// What a partition is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Shared by both slots (the ESP, the Pi's `autoboot.txt` partition): an upgrade
    /// rewrites what it holds, so nothing that changes with a release may live here
    /// except through the boot-partition update.
    Boot,
    /// Part of one A/B slot: written whole by an upgrade of that slot.
    Slot,
    /// The state partition mounted at `/var`; the last one, grown to the end of the disk.
    State,
}

/// A filesystem in a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Filesystem {
    /// FAT (the ESP, the Pi's boot partitions).
    Vfat,
    /// ext4 (a slot's root read-only, or `/var`).
    Ext4,
    /// squashfs (a slot's root).
    Squashfs,
    /// Raw bytes (a U-Boot environment, a vboot kernel partition).
    None,
}

/// A GPT partition type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PartitionType {
    /// EFI system partition.
    Esp,
    /// Microsoft basic data (FAT partitions the Pi firmware boots from).
    BasicData,
    /// Linux filesystem data.
    Linux,
}

/// A file the boot chain reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BootFile {
    /// What it is.
    pub kind: BootFileKind,
    /// Its path inside the partition's filesystem, absolute (`/boot/vmlinuz`).
    pub path: PathBuf,
    /// Where it lives: `slot:PART` (in each slot's partition with that content) or the
    /// name of a shared partition (`esp`).
    pub location: String,
}

/// What a boot file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BootFileKind {
    /// The kernel image.
    Kernel,
    /// The initramfs.
    Initramfs,
    /// A device tree blob or overlay.
    DeviceTree,
    /// Bootloader configuration that changes with a release (`config.txt`, `cmdline.txt`).
    BootConfig,
    /// The bootloader itself and its fixed script (GRUB-EFI, `grub.cfg`): may be shared.
    Bootloader,
}

impl BootFileKind {
    /// Its name as definitions write it (`device-tree`).
    pub fn as_str(self) -> &'static str {
        match self {
            BootFileKind::Kernel => "kernel",
            BootFileKind::Initramfs => "initramfs",
            BootFileKind::DeviceTree => "device-tree",
            BootFileKind::BootConfig => "boot-config",
            BootFileKind::Bootloader => "bootloader",
        }
    }

    /// Whether the file changes with a release and so must live inside each slot.
    pub fn per_slot(self) -> bool {
        !matches!(self, BootFileKind::Bootloader)
    }
}

/// The watchdog that resets a hung machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind", deny_unknown_fields)]
pub enum Watchdog {
    /// No watchdog (development boards only: a hung daemon is never reset).
    None,
    /// A Linux watchdog device.
    Linux {
        /// The device, `/dev/watchdog0`.
        device: PathBuf,
        /// The kernel driver (module) behind it, `i6300esb`.
        driver: String,
        /// The shortest timeout the hardware takes, in seconds.
        min_timeout_secs: u32,
        /// The longest timeout the hardware takes, in seconds.
        max_timeout_secs: u32,
        /// The timeout Skerry arms, in seconds.
        timeout_secs: u32,
    },
    /// An external watchdog IC fed by toggling a GPIO line.
    Gpio {
        /// The GPIO chip, `/dev/gpiochip0`.
        chip: PathBuf,
        /// The line (offset) on the chip.
        line: u32,
        /// How often the line is toggled, in milliseconds.
        toggle_period_ms: u32,
        /// The IC's fixed timeout, in milliseconds.
        timeout_ms: u32,
    },
}

/// The serial console.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Console {
    /// The kernel's name for it (`ttyS0`, `ttyAMA0`, `serial0`), as in `console=`.
    pub device: String,
    /// Its speed.
    pub baud: u32,
}

/// A status LED.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Led {
    /// What it shows (`status`, `activity`).
    pub name: String,
    /// How it is driven.
    pub drive: LedDrive,
    /// Whether a low level lights it.
    #[serde(default)]
    pub active_low: bool,
}

/// How an LED is driven.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind", deny_unknown_fields)]
pub enum LedDrive {
    /// A GPIO line.
    Gpio {
        /// The GPIO chip, `/dev/gpiochip0`.
        chip: PathBuf,
        /// The line (offset) on the chip.
        line: u32,
    },
    /// A kernel LED under `/sys/class/leds/NAME`.
    Sysfs {
        /// Its name there (`ACT`, `led0`).
        led: String,
    },
}

/// Raspberry Pi specifics.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RaspberryPi {
    /// Which model (4 or 5).
    pub model: u8,
    /// The partition whose FAT holds `autoboot.txt` (the firmware reads partition 1).
    pub autoboot_partition: String,
    /// Each slot's boot partition number, as `autoboot.txt`'s `boot_partition=` names it.
    pub tryboot: BTreeMap<String, u32>,
}
