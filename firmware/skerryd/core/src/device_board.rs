//! On a device the board comes from the slot's `/etc/skerry/board.toml` (a
//! `skerry-boards` definition, the one the image was built for), not from `board.json`.
//! It is turned into the daemon's [`BoardDefinition`] as boards/README.md says: `name`
//! as is; the boot store from `boot_state_spec()` with `{dev:NAME}` and `{disk}` the
//! block devices the kernel lists under that GPT name, `{mnt:NAME}` where PID 1 mounts
//! it ([`mount_point`]); each slot's image the device of its `root` partition; the
//! watchdog the device of a `linux` watchdog.

use std::cell::RefCell;
use std::path::{Path, PathBuf};

use skerry_boards::{Placeholder, Role};

use crate::layout::{read_small, BoardDefinition, BoardWatchdog, LayoutError, SlotDefinition};
use crate::partitions::{self, BlockPartition};

/// Where the ESP (the board's first `boot` partition) is mounted on a device.
pub const ESP_MOUNT: &str = "/boot/efi";

/// Where PID 1 mounts partition `name` of `definition`: the first `boot` partition at
/// [`ESP_MOUNT`], any other at `/boot/NAME`.
pub fn mount_point(definition: &skerry_boards::BoardDefinition, name: &str) -> PathBuf {
    let first_boot = definition
        .disk
        .partitions
        .iter()
        .find(|p| p.role == Role::Boot)
        .map(|p| p.name.as_str());
    if first_boot == Some(name) {
        PathBuf::from(ESP_MOUNT)
    } else {
        Path::new("/boot").join(name)
    }
}

/// Reads and validates the definition at `path` (bounded, as every small file).
pub fn read_definition(path: &Path) -> Result<skerry_boards::BoardDefinition, LayoutError> {
    let bytes = read_small(path)?;
    let text = std::str::from_utf8(&bytes).map_err(|_| LayoutError::Board {
        path: path.to_owned(),
        message: "not UTF-8 text".into(),
    })?;
    skerry_boards::BoardDefinition::from_toml(text, path).map_err(|e| LayoutError::Board {
        path: path.to_owned(),
        message: e.to_string(),
    })
}

/// Reads `path` and derives the daemon's board from it and the partitions listed under
/// `class_block` (`/sys/class/block`).
pub fn load(path: &Path, class_block: &Path) -> Result<BoardDefinition, LayoutError> {
    let definition = read_definition(path)?;
    let found =
        partitions::scan(class_block, Path::new("/dev")).map_err(|e| LayoutError::Board {
            path: path.to_owned(),
            message: format!(
                "cannot list the block devices in {}: {e}",
                class_block.display()
            ),
        })?;
    derive(&definition, &found).map_err(|message| LayoutError::Board {
        path: path.to_owned(),
        message,
    })
}

/// The daemon's board from `definition` and the partitions `found` on the disk.
pub fn derive(
    definition: &skerry_boards::BoardDefinition,
    found: &[BlockPartition],
) -> Result<BoardDefinition, String> {
    let device_of = |name: &str| found.iter().find(|p| p.label == name);
    let missing: RefCell<Vec<String>> = RefCell::default();
    let resolve = |placeholder: Placeholder<'_>| -> PathBuf {
        match placeholder {
            Placeholder::Disk => match definition
                .disk
                .partitions
                .iter()
                .find_map(|p| device_of(&p.name))
            {
                Some(p) => p.disk.clone(),
                None => {
                    missing.borrow_mut().push("the disk".into());
                    PathBuf::new()
                }
            },
            Placeholder::Device { name, .. } => match device_of(name) {
                Some(p) => p.device.clone(),
                None => {
                    missing.borrow_mut().push(format!("partition {name:?}"));
                    PathBuf::new()
                }
            },
            Placeholder::Mount { name, .. } => mount_point(definition, name),
        }
    };
    let boot_store = skerry_boards::boot_state::render(
        &definition.bootloader.boot_state,
        &definition.disk,
        &resolve,
    )
    .map_err(|e| format!("its boot-state store: {e}"))?;
    let mut slots = Vec::new();
    for partition in &definition.disk.partitions {
        if partition.role != Role::Slot || partition.content.as_deref() != Some("root") {
            continue;
        }
        let Some(slot) = &partition.slot else {
            continue;
        };
        slots.push(SlotDefinition {
            name: slot.clone(),
            image: resolve(Placeholder::Device {
                name: &partition.name,
                number: 0,
            }),
        });
    }
    let missing = missing.into_inner();
    if !missing.is_empty() {
        return Err(format!(
            "the kernel lists no block device for {} (by GPT name in /sys/class/block/*/uevent)",
            missing.join(", ")
        ));
    }
    let watchdog = match &definition.watchdog {
        skerry_boards::Watchdog::None => BoardWatchdog::None,
        skerry_boards::Watchdog::Linux {
            device,
            timeout_secs,
            ..
        } => BoardWatchdog::Linux {
            device: device.clone(),
            armed_at_boot_secs: Some(*timeout_secs),
        },
        skerry_boards::Watchdog::Gpio { .. } => {
            return Err("a GPIO watchdog is not driven by skerryd yet".into())
        }
    };
    Ok(BoardDefinition {
        name: definition.name.clone(),
        boot_store,
        slots,
        watchdog,
        verified_root: definition.verified_root,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn qemu() -> skerry_boards::BoardDefinition {
        skerry_boards::shipped("qemu-x86_64").unwrap().unwrap()
    }

    fn part(number: u32, label: &str) -> BlockPartition {
        BlockPartition {
            device: format!("/dev/vda{number}").into(),
            disk: "/dev/vda".into(),
            number,
            label: label.into(),
        }
    }

    #[test]
    fn qemu_board_on_its_disk() {
        let found = [
            part(1, "esp"),
            part(2, "root-a"),
            part(3, "root-b"),
            part(4, "var"),
        ];
        let board = derive(&qemu(), &found).unwrap();
        assert_eq!(board.name, "qemu-x86_64");
        assert_eq!(board.boot_store, "grub:/boot/efi/EFI/BOOT/grubenv");
        assert_eq!(
            board.slots,
            vec![
                SlotDefinition {
                    name: "A".into(),
                    image: "/dev/vda2".into()
                },
                SlotDefinition {
                    name: "B".into(),
                    image: "/dev/vda3".into()
                },
            ]
        );
        assert_eq!(
            board.watchdog,
            BoardWatchdog::Linux {
                device: "/dev/watchdog0".into(),
                armed_at_boot_secs: Some(30),
            }
        );
    }

    #[test]
    fn a_missing_slot_partition_is_named() {
        let found = [part(1, "esp"), part(2, "root-a")];
        let error = derive(&qemu(), &found).unwrap_err();
        assert!(error.contains("partition \"root-b\""), "{error}");
    }

    #[test]
    fn esp_mount_point() {
        assert_eq!(mount_point(&qemu(), "esp"), Path::new("/boot/efi"));
        assert_eq!(mount_point(&qemu(), "var"), Path::new("/boot/var"));
    }
}
