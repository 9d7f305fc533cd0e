//! Each class of bad definition is refused with a message naming what is wrong: decode
//! errors (unknown keys, bad sizes) with the file and line, validation problems all at once.

use std::path::{Path, PathBuf};

use skerry_boards::{
    shipped, BoardDefinition, BoardError, BootloaderKind, LedDrive, Size, Watchdog,
};

const QEMU: &str = include_str!("../boards/qemu-x86_64.toml");

fn qemu() -> BoardDefinition {
    shipped("qemu-x86_64").unwrap().unwrap()
}

fn rpi4() -> BoardDefinition {
    shipped("rpi4").unwrap().unwrap()
}

fn size(text: &str) -> Size {
    text.parse().unwrap()
}

fn decode_error(text: &str) -> String {
    match BoardDefinition::from_toml(text, Path::new("boards/bad.toml")) {
        Err(e @ BoardError::Decode { .. }) => e.to_string(),
        other => panic!("expected a decode error, got {other:?}"),
    }
}

/// The line (1-based) of the first line of `text` that contains `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines().position(|l| l.contains(needle)).unwrap() + 1
}

#[test]
fn decode_errors_name_the_file_the_key_and_the_line() {
    let cases: [(&str, String, &str, &str); 7] = [
        (
            "an unknown top-level key",
            QEMU.replace(
                "arch = \"x86_64\"\n",
                "arch = \"x86_64\"\ncolour = \"red\"\n",
            ),
            "unknown field `colour`",
            "colour = ",
        ),
        (
            "an unknown key in a partition",
            QEMU.replacen("type = \"esp\"\n", "type = \"esp\"\nlabel = \"EFI\"\n", 1),
            "unknown field `label`",
            "label = ",
        ),
        (
            "an unknown key in the watchdog",
            QEMU.replace(
                "timeout_secs = 30\n",
                "timeout_secs = 30\npretimeout_secs = 5\n",
            ),
            "unknown field `pretimeout_secs`",
            // The watchdog is a tagged table: the parser points at its header.
            "[watchdog]",
        ),
        (
            "an ambiguous size unit",
            QEMU.replace("size = \"64MiB\"", "size = \"64MB\""),
            "ambiguous",
            "\"64MB\"",
        ),
        (
            "an unknown architecture",
            QEMU.replace("arch = \"x86_64\"", "arch = \"riscv64\""),
            "riscv64",
            "riscv64",
        ),
        (
            "an unknown bootloader",
            QEMU.replace("kind = \"grub-efi\"", "kind = \"systemd-boot\""),
            "systemd-boot",
            "systemd-boot",
        ),
        (
            "an unknown watchdog kind",
            QEMU.replace("kind = \"linux\"", "kind = \"softdog\""),
            "softdog",
            "kind = \"softdog\"",
        ),
    ];
    for (what, text, needle, line_needle) in cases {
        let err = decode_error(&text);
        assert!(err.contains(needle), "{what}: {err}");
        assert!(err.starts_with("boards/bad.toml:"), "{what}: {err}");
        let line = line_of(&text, line_needle);
        assert!(
            err.contains(&format!("bad.toml:{line}:")),
            "{what}: line {line}: {err}"
        );
    }
}

#[test]
fn a_missing_key_is_named() {
    let text = QEMU.replace("baud = 115200\n", "");
    let err = decode_error(&text);
    assert!(err.contains("missing field `baud`"), "{err}");
}

type Edit = fn(&mut BoardDefinition);
type Base = fn() -> BoardDefinition;

#[test]
fn each_class_of_validation_problem_is_reported() {
    let cases: [(&str, Base, Edit, &str, &str); 27] = [
        (
            "a kernel package that is no Debian name",
            qemu,
            |b| b.kernel.as_mut().unwrap().package = "../linux".into(),
            "kernel.package",
            "not a Debian package name",
        ),
        (
            "a kernel version with a space",
            qemu,
            |b| b.kernel.as_mut().unwrap().version = "6.1 -1".into(),
            "kernel.version",
            "not a Debian package version",
        ),
        (
            "overlapping partitions",
            qemu,
            |b| b.disk.partitions[2].start = Some(size("100MiB")),
            "disk.partitions[2].start",
            "overlaps \"root-a\"",
        ),
        (
            "a partition past the disk's end",
            qemu,
            |b| b.disk.min_size = size("1GiB"),
            "disk.partitions[2].size",
            "past the end of a 1GiB disk",
        ),
        (
            "a partition in the partition table",
            qemu,
            |b| b.disk.partitions[0].start = Some(size("0B")),
            "disk.partitions[0].start",
            "inside the partition table",
        ),
        (
            "an unaligned size",
            qemu,
            |b| b.disk.partitions[0].size = size("1000KiB"),
            "disk.partitions[0].size",
            "multiple of 1MiB",
        ),
        (
            "a slot without the boot files' partition",
            qemu,
            |b| b.disk.partitions[2].content = Some("rootfs".into()),
            "boot_files[2].location",
            "slot B has no partition with content \"root\"",
        ),
        (
            "slots of different sizes",
            qemu,
            |b| b.disk.partitions[2].size = size("256MiB"),
            "disk.partitions",
            "slots A and B differ",
        ),
        (
            "a kernel in the shared ESP",
            qemu,
            |b| b.boot_files[2].location = "esp".into(),
            "boot_files[2].location",
            "must live inside each slot",
        ),
        (
            "no kernel in the slots",
            qemu,
            |b| {
                b.boot_files.remove(2);
            },
            "boot_files",
            "no kernel inside the slots",
        ),
        (
            "a boot file in a partition that does not exist",
            qemu,
            |b| b.boot_files[0].location = "efi".into(),
            "boot_files[0].location",
            "no partition is named \"efi\"",
        ),
        (
            "a shared file in one slot's partition",
            qemu,
            |b| b.boot_files[0].location = "root-a".into(),
            "boot_files[0].location",
            "not a shared boot partition",
        ),
        (
            "a relative boot file path",
            qemu,
            |b| b.boot_files[3].path = PathBuf::from("boot/../initrd"),
            "boot_files[3].path",
            "absolute path",
        ),
        (
            "duplicate partition names",
            qemu,
            |b| b.disk.partitions[2].name = "root-a".into(),
            "disk.partitions[2].name",
            "listed twice",
        ),
        (
            "duplicate modules",
            qemu,
            |b| b.modules.push("ext4".into()),
            "modules[11]",
            "listed twice",
        ),
        (
            "duplicate LEDs",
            rpi4,
            |b| {
                let led = b.leds[0].clone();
                b.leds.push(led);
            },
            "leds[1].name",
            "listed twice",
        ),
        (
            "the state partition not last",
            qemu,
            |b| b.disk.partitions.swap(2, 3),
            "disk.partitions",
            "must be the last one",
        ),
        (
            "a watchdog timeout above the hardware's",
            qemu,
            |b| {
                if let Watchdog::Linux { timeout_secs, .. } = &mut b.watchdog {
                    *timeout_secs = 3000
                }
            },
            "watchdog.timeout_secs",
            "outside the hardware's range 1..=2046",
        ),
        (
            "a watchdog maximum above the limit",
            qemu,
            |b| {
                if let Watchdog::Linux {
                    max_timeout_secs, ..
                } = &mut b.watchdog
                {
                    *max_timeout_secs = 7200
                }
            },
            "watchdog.max_timeout_secs",
            "more than 3600",
        ),
        (
            "a GPIO watchdog toggled too slowly",
            qemu,
            |b| {
                b.watchdog = Watchdog::Gpio {
                    chip: "/dev/gpiochip0".into(),
                    line: 4,
                    toggle_period_ms: 800,
                    timeout_ms: 1000,
                }
            },
            "watchdog.toggle_period_ms",
            "at most half",
        ),
        (
            "an odd baud rate",
            qemu,
            |b| b.console.baud = 12345,
            "console.baud",
            "12345 is not one of",
        ),
        (
            "a GPIO line out of range",
            rpi4,
            |b| {
                b.leds[0].drive = LedDrive::Gpio {
                    chip: "/dev/gpiochip0".into(),
                    line: 5000,
                }
            },
            "leds[0].drive.line",
            "more than 1023",
        ),
        (
            "a store of the wrong kind",
            qemu,
            |b| b.bootloader.boot_state = "uboot:{dev:esp}".into(),
            "bootloader.boot_state",
            "keeps its state in a grub: store",
        ),
        (
            "a store on a partition that does not exist",
            qemu,
            |b| b.bootloader.boot_state = "grub:{mnt:boot}/grubenv".into(),
            "bootloader.boot_state",
            "partition \"boot\"",
        ),
        (
            "GPT slot numbers that are not the slots",
            qemu,
            |b| {
                b.bootloader.kind = BootloaderKind::GptVboot;
                b.bootloader.boot_state = "gpt:{disk},A=1,B=3".into();
            },
            "bootloader.boot_state",
            "not one of slot A's partitions",
        ),
        (
            "tryboot numbers that disagree",
            rpi4,
            |b| {
                b.raspberry_pi
                    .as_mut()
                    .unwrap()
                    .tryboot
                    .insert("A".into(), 4);
            },
            "raspberry_pi.tryboot.A",
            "not a FAT partition of slot A",
        ),
        (
            "a tryboot board without its Pi table",
            rpi4,
            |b| b.raspberry_pi = None,
            "raspberry_pi",
            "needs a [raspberry_pi] table",
        ),
    ];
    for (what, base, edit, field, needle) in cases {
        let mut board = base();
        edit(&mut board);
        let problems = board.validate().expect_err(what).0;
        assert!(
            problems
                .iter()
                .any(|p| p.field == field && p.message.contains(needle)),
            "{what}: expected {field}: …{needle}…, got {problems:#?}"
        );
    }
}

#[test]
fn every_problem_is_listed_at_once_with_the_file() {
    let text = QEMU
        .replace("baud = 115200", "baud = 1")
        .replace("timeout_secs = 30", "timeout_secs = 0")
        .replace("name = \"root-b\"", "name = \"root-a\"");
    let err = BoardDefinition::from_toml(&text, Path::new("boards/qemu-x86_64.toml")).unwrap_err();
    let BoardError::Invalid { path, problems } = &err else {
        panic!("expected invalid, got {err:?}");
    };
    assert_eq!(path, Path::new("boards/qemu-x86_64.toml"));
    let fields: Vec<&str> = problems.0.iter().map(|p| p.field.as_str()).collect();
    for field in [
        "console.baud",
        "watchdog.timeout_secs",
        "disk.partitions[2].name",
    ] {
        assert!(fields.contains(&field), "{field} missing from {fields:?}");
    }
    let message = err.to_string();
    assert!(
        message.starts_with("boards/qemu-x86_64.toml is not a valid board definition: "),
        "{message}"
    );
}

#[test]
fn counts_are_bounded_before_anything_walks_them() {
    let mut board = qemu();
    board.modules = (0..65).map(|i| format!("m{i}")).collect();
    let problems = board.validate().unwrap_err().0;
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].field, "modules");
    assert!(problems[0].message.contains("65 entries, more than 64"));
}

#[test]
fn files_are_bounded_and_named_after_their_board() {
    let dir = tempfile::tempdir().unwrap();
    let wrong = dir.path().join("qemu.toml");
    std::fs::write(&wrong, QEMU).unwrap();
    let err = BoardDefinition::load(&wrong).unwrap_err().to_string();
    assert!(err.contains("name the file qemu-x86_64.toml"), "{err}");

    let big = dir.path().join("big.toml");
    let padding = "#".repeat(skerry_boards::MAX_DEFINITION_BYTES as usize);
    std::fs::write(&big, format!("{QEMU}{padding}\n")).unwrap();
    let err = BoardDefinition::load(&big).unwrap_err();
    assert!(matches!(err, BoardError::TooLarge { .. }), "{err}");

    let missing = BoardDefinition::load(&dir.path().join("none.toml")).unwrap_err();
    assert!(missing.to_string().contains("none.toml"), "{missing}");
}
