//! Whole-definition checks. Every problem is collected, so a definition author sees all
//! of them at once rather than one per run.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Component, Path};

use skerry_boot_state::StoreSpec;

use crate::boot_state::{example_path, render};
use crate::definition::{
    Arch, BoardDefinition, BootloaderKind, Filesystem, LedDrive, PartitionType, Role, Watchdog,
};
use crate::layout::{place, ALIGNMENT, BACKUP_GPT_BYTES};

/// The longest board, partition, slot, LED or content name (a GPT name holds 36 characters).
pub const MAX_NAME_LEN: usize = 36;
/// The longest description.
pub const MAX_DESCRIPTION_LEN: usize = 200;
/// The most partitions a definition may list.
pub const MAX_PARTITIONS: usize = 16;
/// The most boot files a definition may list.
pub const MAX_BOOT_FILES: usize = 64;
/// The longest kernel package name or version.
pub const MAX_PACKAGE_LEN: usize = 100;
/// The most kernel modules a definition may list.
pub const MAX_MODULES: usize = 64;
/// The longest kernel module name (the kernel's `MODULE_NAME_LEN` less its NUL).
pub const MAX_MODULE_NAME_LEN: usize = 55;
/// The most status LEDs a definition may list.
pub const MAX_LEDS: usize = 16;
/// The longest path (a boot file, a device).
pub const MAX_PATH_LEN: usize = 255;
/// The longest watchdog timeout a definition may name (as `skerry-watchdog` allows).
pub const MAX_WATCHDOG_TIMEOUT_SECS: u32 = 3600;
/// The highest GPIO line offset accepted.
pub const MAX_GPIO_LINE: u32 = 1023;
/// Console speeds a definition may name.
pub const BAUD_RATES: [u32; 8] = [9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600];

/// One thing wrong with a definition: where, and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The key it is about, as a path into the definition (`disk.partitions[2].size`).
    pub field: String,
    /// What is wrong and what would be right.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// The problems found, in the order of the definition.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Problems(pub Vec<Problem>);

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{problem}")?;
        }
        Ok(())
    }
}

impl Problems {
    fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(Problem {
            field: field.into(),
            message: message.into(),
        });
    }
}

impl BoardDefinition {
    /// Checks the whole definition and lists every problem.
    pub fn validate(&self) -> Result<(), Problems> {
        let mut p = Problems::default();
        check_name(&mut p, "name", &self.name, false);
        if self.description.len() > MAX_DESCRIPTION_LEN {
            p.add(
                "description",
                format!("longer than {MAX_DESCRIPTION_LEN} bytes"),
            );
        }
        // Counts first: nothing below walks a list longer than its limit.
        let over = [
            (
                "disk.partitions",
                self.disk.partitions.len(),
                MAX_PARTITIONS,
            ),
            ("boot_files", self.boot_files.len(), MAX_BOOT_FILES),
            ("modules", self.modules.len(), MAX_MODULES),
            ("leds", self.leds.len(), MAX_LEDS),
        ];
        let mut too_many = false;
        for (field, len, limit) in over {
            if len > limit {
                p.add(field, format!("{len} entries, more than {limit}"));
                too_many = true;
            }
        }
        if too_many {
            return Err(p);
        }
        self.check_partitions(&mut p);
        self.check_boot_files(&mut p);
        self.check_modules(&mut p);
        self.check_kernel(&mut p);
        self.check_watchdog(&mut p);
        self.check_console_and_leds(&mut p);
        self.check_boot_state(&mut p);
        self.check_raspberry_pi(&mut p);
        if p.0.is_empty() {
            Ok(())
        } else {
            Err(p)
        }
    }

    /// The slots and, for each, its partitions by content.
    fn slots(&self) -> BTreeMap<&str, BTreeMap<&str, (u32, &crate::definition::Partition)>> {
        let mut slots: BTreeMap<&str, BTreeMap<_, _>> = BTreeMap::new();
        for (i, part) in self.disk.partitions.iter().enumerate() {
            if let (Role::Slot, Some(slot), Some(content)) = (part.role, &part.slot, &part.content)
            {
                let number = u32::try_from(i + 1).unwrap_or(u32::MAX);
                slots
                    .entry(slot.as_str())
                    .or_default()
                    .insert(content.as_str(), (number, part));
            }
        }
        slots
    }

    fn check_partitions(&self, p: &mut Problems) {
        let disk = &self.disk;
        let mut names = BTreeSet::new();
        for (i, part) in disk.partitions.iter().enumerate() {
            let field = format!("disk.partitions[{i}]");
            check_name(p, &format!("{field}.name"), &part.name, false);
            if !names.insert(part.name.as_str()) {
                p.add(
                    format!("{field}.name"),
                    format!("partition {:?} is listed twice", part.name),
                );
            }
            match (part.role, &part.slot, &part.content) {
                (Role::Slot, Some(slot), Some(content)) => {
                    check_name(p, &format!("{field}.slot"), slot, true);
                    check_name(p, &format!("{field}.content"), content, false);
                }
                (Role::Slot, _, _) => p.add(&field, "a slot partition needs both slot and content"),
                (_, None, None) => {}
                (_, _, _) => p.add(&field, "only slot partitions have slot and content"),
            }
            if part.size.bytes() == 0 {
                p.add(format!("{field}.size"), "a partition cannot be empty");
            }
            if part.size.bytes() % ALIGNMENT != 0 {
                p.add(
                    format!("{field}.size"),
                    format!("{} is not a multiple of 1MiB", part.size),
                );
            }
            if let Some(start) = part.start {
                if start.bytes() % ALIGNMENT != 0 {
                    p.add(
                        format!("{field}.start"),
                        format!("{start} is not a multiple of 1MiB"),
                    );
                }
            }
            if part.role == Role::Boot && part.filesystem != Filesystem::Vfat {
                p.add(
                    format!("{field}.filesystem"),
                    "a shared boot partition is FAT (vfat), which firmware reads",
                );
            }
            if part.role == Role::State && part.filesystem != Filesystem::Ext4 {
                p.add(
                    format!("{field}.filesystem"),
                    "the state partition holds /var as ext4",
                );
            }
        }
        let placed = place(disk);
        let usable_end = disk.min_size.bytes().saturating_sub(BACKUP_GPT_BYTES);
        for (i, part) in placed.iter().enumerate() {
            let field = format!("disk.partitions[{i}]");
            if part.start < ALIGNMENT {
                p.add(
                    format!("{field}.start"),
                    "starts inside the partition table (the first MiB)",
                );
            }
            if let Some(prev) = i.checked_sub(1).map(|j| &placed[j]) {
                if part.start < prev.end {
                    p.add(
                        format!("{field}.start"),
                        format!(
                            "{:?} overlaps {:?}, which ends at byte {}",
                            part.partition.name, prev.partition.name, prev.end
                        ),
                    );
                }
            }
            if part.end > usable_end {
                p.add(
                    format!("{field}.size"),
                    format!("{:?} ends at byte {}, past the end of a {} disk less its backup GPT ({usable_end})", part.partition.name, part.end, disk.min_size),
                );
            }
        }
        let states: Vec<usize> = disk
            .partitions
            .iter()
            .enumerate()
            .filter(|(_, q)| q.role == Role::State)
            .map(|(i, _)| i)
            .collect();
        match states.as_slice() {
            [i] if *i + 1 == disk.partitions.len() => {}
            [_] => p.add(
                "disk.partitions",
                "the state partition must be the last one: it grows to the end of the disk",
            ),
            _ => p.add(
                "disk.partitions",
                format!(
                    "exactly one state partition (for /var) is needed, found {}",
                    states.len()
                ),
            ),
        }
        let slots = self.slots();
        if slots.len() != 2 {
            p.add(
                "disk.partitions",
                format!("an A/B board has 2 slots, found {}", slots.len()),
            );
        }
        let mut shapes = slots.iter();
        if let Some((first_name, first)) = shapes.next() {
            for (name, parts) in shapes {
                let shape = |m: &BTreeMap<&str, (u32, &crate::definition::Partition)>| {
                    m.iter()
                        .map(|(c, (_, q))| (c.to_string(), q.size, q.filesystem))
                        .collect::<Vec<_>>()
                };
                if shape(first) != shape(parts) {
                    p.add("disk.partitions", format!("slots {first_name} and {name} differ in their parts, sizes or filesystems; both must hold the same image"));
                }
            }
        }
        if self.bootloader.kind == BootloaderKind::GrubEfi
            && !disk
                .partitions
                .iter()
                .any(|q| q.kind == PartitionType::Esp && q.filesystem == Filesystem::Vfat)
        {
            p.add("disk.partitions", "a UEFI board needs an EFI system partition (type = \"esp\", filesystem = \"vfat\")");
        }
    }

    fn check_boot_files(&self, p: &mut Problems) {
        let slots = self.slots();
        let mut seen = BTreeSet::new();
        let mut kernel_in_slots = false;
        for (i, file) in self.boot_files.iter().enumerate() {
            let field = format!("boot_files[{i}]");
            check_path(p, &format!("{field}.path"), &file.path);
            if !seen.insert((file.location.as_str(), file.path.as_path())) {
                p.add(
                    &field,
                    format!(
                        "{} in {} is listed twice",
                        file.path.display(),
                        file.location
                    ),
                );
            }
            match file.location.strip_prefix("slot:") {
                Some(content) => {
                    for (slot, parts) in &slots {
                        match parts.get(content) {
                            None => p.add(format!("{field}.location"), format!("slot {slot} has no partition with content {content:?} to hold {}", file.path.display())),
                            Some((_, part)) if part.filesystem == Filesystem::None => p.add(format!("{field}.location"), format!("slot {slot}'s {content} partition has no filesystem to hold {}", file.path.display())),
                            Some(_) => {}
                        }
                    }
                    kernel_in_slots |= file.kind == crate::definition::BootFileKind::Kernel && !slots.is_empty();
                }
                None => match self.disk.find(&file.location) {
                    None => p.add(format!("{field}.location"), format!("no partition is named {:?}; use slot:PART or a shared partition's name", file.location)),
                    Some(_) if file.kind.per_slot() => p.add(
                        format!("{field}.location"),
                        format!("{} ({}) changes with a release and must live inside each slot (slot:PART), not in {:?}, which an upgrade of either slot would overwrite", file.path.display(), file.kind.as_str(), file.location),
                    ),
                    Some((_, part)) if part.role != Role::Boot => p.add(
                        format!("{field}.location"),
                        format!("{:?} is not a shared boot partition; name a file inside each slot as slot:PART", file.location),
                    ),
                    Some(_) => {}
                },
            }
        }
        if !kernel_in_slots {
            p.add("boot_files", "no kernel inside the slots: list one with kind = \"kernel\" and location = \"slot:PART\"");
        }
    }

    fn check_modules(&self, p: &mut Problems) {
        let mut seen = BTreeSet::new();
        for (i, module) in self.modules.iter().enumerate() {
            check_module(p, &format!("modules[{i}]"), module);
            if !seen.insert(module.as_str()) {
                p.add(
                    format!("modules[{i}]"),
                    format!("module {module:?} is listed twice"),
                );
            }
        }
        if self.verified_root
            && !self
                .modules
                .iter()
                .any(|m| m.replace('-', "_") == "dm_verity")
        {
            p.add(
                "verified_root",
                "a verified root needs the device-mapper verity target: list \"dm-verity\" in modules",
            );
        }
    }

    fn check_kernel(&self, p: &mut Problems) {
        let Some(kernel) = &self.kernel else { return };
        // Debian's rules for package names and versions (the subset kernels use); both
        // end up in a file name and an `apt-get download` argument.
        let name_ok = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+-.".contains(&b);
        let package = &kernel.package;
        if package.len() < 2
            || package.len() > MAX_PACKAGE_LEN
            || !package.bytes().all(name_ok)
            || !package.as_bytes()[0].is_ascii_alphanumeric()
        {
            p.add(
                "kernel.package",
                format!("{package:?} is not a Debian package name"),
            );
        }
        let version_ok = |b: u8| b.is_ascii_alphanumeric() || b"+-.~".contains(&b);
        let version = &kernel.version;
        if version.is_empty()
            || version.len() > MAX_PACKAGE_LEN
            || !version.bytes().all(version_ok)
            || !version.as_bytes()[0].is_ascii_digit()
        {
            p.add(
                "kernel.version",
                format!("{version:?} is not a Debian package version"),
            );
        }
    }

    fn check_watchdog(&self, p: &mut Problems) {
        match &self.watchdog {
            Watchdog::None => {}
            Watchdog::Linux {
                device,
                driver,
                min_timeout_secs,
                max_timeout_secs,
                timeout_secs,
            } => {
                check_path(p, "watchdog.device", device);
                if !device.starts_with("/dev") {
                    p.add(
                        "watchdog.device",
                        format!("{} is not under /dev", device.display()),
                    );
                }
                check_module(p, "watchdog.driver", driver);
                if *min_timeout_secs == 0 {
                    p.add("watchdog.min_timeout_secs", "must be at least 1");
                }
                if min_timeout_secs > max_timeout_secs {
                    p.add(
                        "watchdog.min_timeout_secs",
                        format!(
                            "{min_timeout_secs} is more than max_timeout_secs ({max_timeout_secs})"
                        ),
                    );
                }
                if *max_timeout_secs > MAX_WATCHDOG_TIMEOUT_SECS {
                    p.add(
                        "watchdog.max_timeout_secs",
                        format!("{max_timeout_secs} is more than {MAX_WATCHDOG_TIMEOUT_SECS}"),
                    );
                }
                if timeout_secs < min_timeout_secs || timeout_secs > max_timeout_secs {
                    p.add("watchdog.timeout_secs", format!("{timeout_secs} is outside the hardware's range {min_timeout_secs}..={max_timeout_secs}"));
                }
            }
            Watchdog::Gpio {
                chip,
                line,
                toggle_period_ms,
                timeout_ms,
            } => {
                check_path(p, "watchdog.chip", chip);
                if *line > MAX_GPIO_LINE {
                    p.add(
                        "watchdog.line",
                        format!("{line} is more than {MAX_GPIO_LINE}"),
                    );
                }
                if *timeout_ms == 0 || *timeout_ms > MAX_WATCHDOG_TIMEOUT_SECS * 1000 {
                    p.add(
                        "watchdog.timeout_ms",
                        format!(
                            "{timeout_ms} is outside 1..={}",
                            MAX_WATCHDOG_TIMEOUT_SECS * 1000
                        ),
                    );
                }
                if *toggle_period_ms == 0
                    || u64::from(*toggle_period_ms) * 2 > u64::from(*timeout_ms)
                {
                    p.add("watchdog.toggle_period_ms", format!("{toggle_period_ms} must be at least 1 and at most half the IC's timeout ({timeout_ms})"));
                }
            }
        }
    }

    fn check_console_and_leds(&self, p: &mut Problems) {
        let device = &self.console.device;
        if device.is_empty()
            || device.len() > MAX_NAME_LEN
            || !device.bytes().all(|b| b.is_ascii_alphanumeric())
        {
            p.add(
                "console.device",
                format!("{device:?} is not a tty name like ttyS0 or serial0"),
            );
        }
        if !BAUD_RATES.contains(&self.console.baud) {
            p.add(
                "console.baud",
                format!("{} is not one of {BAUD_RATES:?}", self.console.baud),
            );
        }
        let mut names = BTreeSet::new();
        for (i, led) in self.leds.iter().enumerate() {
            check_name(p, &format!("leds[{i}].name"), &led.name, false);
            if !names.insert(led.name.as_str()) {
                p.add(
                    format!("leds[{i}].name"),
                    format!("LED {:?} is listed twice", led.name),
                );
            }
            match &led.drive {
                LedDrive::Gpio { chip, line } => {
                    check_path(p, &format!("leds[{i}].drive.chip"), chip);
                    if *line > MAX_GPIO_LINE {
                        p.add(
                            format!("leds[{i}].drive.line"),
                            format!("{line} is more than {MAX_GPIO_LINE}"),
                        );
                    }
                }
                LedDrive::Sysfs { led: name } => {
                    if name.is_empty()
                        || name.len() > MAX_NAME_LEN
                        || name.contains('/')
                        || name.starts_with('.')
                    {
                        p.add(
                            format!("leds[{i}].drive.led"),
                            format!("{name:?} is not a name under /sys/class/leds"),
                        );
                    }
                }
            }
        }
    }

    fn check_boot_state(&self, p: &mut Problems) {
        let field = "bootloader.boot_state";
        let spec = match render(&self.bootloader.boot_state, &self.disk, &example_path)
            .map_err(|e| e.to_string())
            .and_then(|s| s.parse::<StoreSpec>().map_err(|e| e.to_string()))
        {
            Ok(spec) => spec,
            Err(e) => return p.add(field, e),
        };
        let kind = self.bootloader.kind.store_kind();
        if !self.bootloader.boot_state.starts_with(&format!("{kind}:")) {
            p.add(
                field,
                format!(
                    "a {:?} bootloader keeps its state in a {kind}: store",
                    self.bootloader.kind
                ),
            );
        }
        let slots = self.slots();
        if let StoreSpec::Gpt { slots: named, .. } | StoreSpec::Tryboot { slots: named, .. } = &spec
        {
            for (slot, number) in named {
                let ok = slots
                    .get(slot.as_str())
                    .is_some_and(|parts| parts.values().any(|(n, _)| n == number));
                if !ok {
                    p.add(field, format!("slot {slot} is given partition {number}, which is not one of slot {slot}'s partitions"));
                }
            }
            if named.len() != slots.len() {
                p.add(
                    field,
                    format!("names {} slots, the disk has {}", named.len(), slots.len()),
                );
            }
        }
    }

    fn check_raspberry_pi(&self, p: &mut Problems) {
        let tryboot = self.bootloader.kind == BootloaderKind::RpiTryboot;
        let Some(pi) = &self.raspberry_pi else {
            if tryboot {
                p.add(
                    "raspberry_pi",
                    "an rpi-tryboot board needs a [raspberry_pi] table",
                );
            }
            return;
        };
        if !tryboot {
            p.add(
                "raspberry_pi",
                "only an rpi-tryboot board has a [raspberry_pi] table",
            );
        }
        if !matches!(pi.model, 4 | 5) {
            p.add("raspberry_pi.model", format!("{} is not 4 or 5", pi.model));
        }
        if self.arch != Arch::Aarch64 {
            p.add("arch", "a Raspberry Pi 4 or 5 runs aarch64");
        }
        match self.disk.find(&pi.autoboot_partition) {
            Some((1, part)) if part.role == Role::Boot && part.filesystem == Filesystem::Vfat => {}
            _ => p.add("raspberry_pi.autoboot_partition", format!("{:?} must be partition 1, a shared FAT boot partition: the firmware reads autoboot.txt there", pi.autoboot_partition)),
        }
        let slots = self.slots();
        if pi.tryboot.len() != slots.len()
            || pi.tryboot.keys().any(|k| !slots.contains_key(k.as_str()))
        {
            p.add(
                "raspberry_pi.tryboot",
                "must give a partition number for each slot and nothing else",
            );
        }
        for (slot, number) in &pi.tryboot {
            let boots = slots.get(slot.as_str()).is_some_and(|parts| {
                parts
                    .values()
                    .any(|(n, q)| n == number && q.filesystem == Filesystem::Vfat)
            });
            if !boots {
                p.add(
                    format!("raspberry_pi.tryboot.{slot}"),
                    format!("partition {number} is not a FAT partition of slot {slot}"),
                );
            }
        }
        if let Ok(StoreSpec::Tryboot { slots: named, .. }) = self.boot_state_spec(&example_path) {
            let named: BTreeMap<String, u32> =
                named.into_iter().map(|(s, n)| (s.to_string(), n)).collect();
            if named != pi.tryboot {
                p.add(
                    "raspberry_pi.tryboot",
                    "differs from the slots' partition numbers in bootloader.boot_state",
                );
            }
        }
    }
}

/// Names: 1 to [`MAX_NAME_LEN`] of lower-case letters, digits and `-` (upper-case too
/// for slot names, `A`/`B`).
fn check_name(p: &mut Problems, field: &str, name: &str, slot: bool) {
    let ok_byte = |b: u8| {
        b.is_ascii_lowercase()
            || b.is_ascii_digit()
            || b == b'-'
            || b == b'_'
            || (slot && b.is_ascii_uppercase())
    };
    if name.is_empty() || name.len() > MAX_NAME_LEN || !name.bytes().all(ok_byte) {
        p.add(
            field,
            format!("{name:?} must be 1 to {MAX_NAME_LEN} of a-z, 0-9, '-' and '_'"),
        );
    }
}

fn check_module(p: &mut Problems, field: &str, name: &str) {
    let ok = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'-';
    if name.is_empty() || name.len() > MAX_MODULE_NAME_LEN || !name.bytes().all(ok) {
        p.add(field, format!("{name:?} is not a kernel module name"));
    }
}

fn check_path(p: &mut Problems, field: &str, path: &Path) {
    let len = path.as_os_str().len();
    if !path.is_absolute()
        || len > MAX_PATH_LEN
        || path.components().any(|c| matches!(c, Component::ParentDir))
    {
        p.add(
            field,
            format!(
                "{} must be an absolute path of at most {MAX_PATH_LEN} bytes without '..'",
                path.display()
            ),
        );
    }
}
