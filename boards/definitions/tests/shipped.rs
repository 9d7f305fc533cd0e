//! Every shipped definition decodes, validates, round-trips, and names a boot-state store
//! that `skerry-boot-state` opens once the disk's paths are filled in.

use std::path::{Path, PathBuf};

use skerry_boards::{
    shipped, BoardDefinition, BootloaderKind, Placeholder, Role, Watchdog, SHIPPED,
};
use skerry_boot_state::StoreSpec;

fn all() -> Vec<BoardDefinition> {
    SHIPPED
        .iter()
        .map(|(name, _)| match shipped(name) {
            Some(Ok(board)) => board,
            Some(Err(e)) => panic!("{name}: {e}"),
            None => panic!("{name} is not shipped"),
        })
        .collect()
}

#[test]
fn every_shipped_definition_decodes_and_validates() {
    let boards = all();
    let names: Vec<&str> = boards.iter().map(|b| b.name.as_str()).collect();
    assert_eq!(names, ["qemu-x86_64", "rpi4", "rpi5", "x86-industrial"]);
    assert!(shipped("no-such-board").is_none());
}

#[test]
fn every_file_in_boards_is_shipped_and_loads_from_disk() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("boards");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert_eq!(files.len(), SHIPPED.len(), "{files:?}");
    for file in files {
        let board = BoardDefinition::load(&file).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            SHIPPED.iter().any(|(n, _)| *n == board.name),
            "{}",
            board.name
        );
    }
}

#[test]
fn every_shipped_definition_round_trips() {
    for board in all() {
        let text = board.to_toml().unwrap();
        let back = BoardDefinition::from_toml(&text, Path::new("round-trip.toml"))
            .unwrap_or_else(|e| panic!("{}: {e}\n{text}", board.name));
        assert_eq!(back, board);
    }
}

#[test]
fn a_gpio_watchdog_and_explicit_starts_round_trip() {
    let mut board = shipped("x86-industrial").unwrap().unwrap();
    board.watchdog = Watchdog::Gpio {
        chip: "/dev/gpiochip1".into(),
        line: 17,
        toggle_period_ms: 500,
        timeout_ms: 1600,
    };
    board.disk.partitions[1].start = Some("300MiB".parse().unwrap());
    board.validate().unwrap();
    let text = board.to_toml().unwrap();
    assert!(text.contains("kind = \"gpio\""), "{text}");
    assert!(text.contains("start = \"300MiB\""), "{text}");
    let back = BoardDefinition::from_toml(&text, Path::new("gpio.toml")).unwrap();
    assert_eq!(back, board);
}

/// The paths a device with an SD card would give: `/dev/mmcblk0`, `/dev/mmcblk0pN` and
/// `/run/skerry/NAME`.
fn device_paths(placeholder: Placeholder<'_>) -> PathBuf {
    match placeholder {
        Placeholder::Disk => "/dev/mmcblk0".into(),
        Placeholder::Device { number, .. } => format!("/dev/mmcblk0p{number}").into(),
        Placeholder::Mount { name, .. } => format!("/run/skerry/{name}").into(),
    }
}

#[test]
fn every_boot_state_spec_parses_as_a_store_spec() {
    for board in all() {
        let spec = board
            .boot_state_spec(&device_paths)
            .unwrap_or_else(|e| panic!("{}: {e}", board.name));
        // The spec `skerryctl boot --store` would be given parses the same again.
        let again: StoreSpec = spec.to_string().parse().unwrap();
        assert_eq!(again, spec, "{}", board.name);
        match (board.bootloader.kind, &spec) {
            (BootloaderKind::GrubEfi, StoreSpec::Grub { path }) => {
                assert_eq!(path, Path::new("/run/skerry/esp/EFI/BOOT/grubenv"));
            }
            (BootloaderKind::RpiTryboot, StoreSpec::Tryboot { dir, slots }) => {
                assert_eq!(dir, Path::new("/run/skerry/firmware"));
                // Each slot's number is that slot's FAT boot partition.
                for (slot, number) in slots {
                    let part = &board.disk.partitions[*number as usize - 1];
                    assert_eq!(part.role, Role::Slot);
                    assert_eq!(part.slot.as_deref(), Some(slot.as_str()));
                    assert_eq!(part.content.as_deref(), Some("boot"));
                }
            }
            (kind, spec) => panic!("{}: {kind:?} with {spec}", board.name),
        }
    }
}
