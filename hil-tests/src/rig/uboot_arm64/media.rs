//! The arm64 board's boot media, built and changed host-side without loop devices or
//! mounts:
//!
//! - **the disk** (virtio-blk): GPT, partition 1 `boot` (FAT) holding `boot.scr`, our
//!   generated U-Boot script (`skerry_boot_state::uboot::boot_script`, wrapped by
//!   `mkimage`); partitions 2 and 3 `root-a`, `root-b` (ext4 slot images holding
//!   `/boot/Image` and `/boot/initrd.img`). Slot B is zeros on a fresh disk.
//! - **the environment** (flash bank 1, offset 0, 256 KiB, as `qemu_arm64` keeps it):
//!   `bootcmd` loads and runs `boot.scr`; the boot state is in RAUC's and our variables,
//!   written by [`UbootEnvStore`] (the format `fw_printenv`/`fw_setenv` read).
//!
//! The script loads the chosen slot's kernel and initramfs with `load virtio 0:N` and
//! starts them with `booti`; a slot that does not load (half written) resets the
//! machine, so its attempt counts like a kernel that never came up.

use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context as _};
use skerry_boot_state::uboot::vars::Vars;
use skerry_boot_state::uboot::{boot_script, env, UbootEnvStore, UbootLayout};
use skerry_boot_state::{BootState, BootStore, FileMedium, SlotName};

use crate::qemu::files::{need_tool, run_tool, VIRT_FLASH_BANK};

const MIB: u64 = 1 << 20;
/// The boot partition: 1 MiB in, 8 MiB.
pub const BOOT_PART: Partition = Partition {
    number: 1,
    name: "boot",
    offset: MIB,
    size: 8 * MIB,
};
/// The slots, each 64 MiB (the kernel's Image is about 33 MB).
pub const SLOTS: [(&str, Partition); 2] = [
    (
        "A",
        Partition {
            number: 2,
            name: "root-a",
            offset: 9 * MIB,
            size: 64 * MIB,
        },
    ),
    (
        "B",
        Partition {
            number: 3,
            name: "root-b",
            offset: 73 * MIB,
            size: 64 * MIB,
        },
    ),
];
/// The whole disk: the partitions and the backup GPT after them.
pub const DISK_SIZE: u64 = 138 * MIB;
/// Where `qemu_arm64` keeps its environment in flash bank 1.
pub const ENV_LAYOUT: UbootLayout = UbootLayout {
    offset: 0,
    size: 0x40000,
    redundant: false,
};
/// The attempts a trial gets.
pub const TRIES: u8 = 3;
/// Load addresses in the `virt` machine's RAM (which starts at 0x4000_0000).
const SCRIPT_ADDR: &str = "0x40200000";
const KERNEL_ADDR: &str = "0x40400000";
const INITRD_ADDR: &str = "0x48000000";

/// One partition of the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partition {
    pub number: u32,
    pub name: &'static str,
    pub offset: u64,
    pub size: u64,
}

/// The partition of slot `slot`.
pub fn slot_partition(slot: &str) -> anyhow::Result<Partition> {
    SLOTS
        .iter()
        .find(|(name, _)| *name == slot)
        .map(|(_, p)| *p)
        .with_context(|| format!("this board has slots A and B, not {slot:?}"))
}

/// The slot names, in the factory order.
pub fn slot_names() -> Vec<SlotName> {
    SLOTS
        .iter()
        .filter_map(|(n, _)| SlotName::new(n).ok())
        .collect()
}

/// A freshly flashed device: A good, B bad.
pub fn factory_state() -> anyhow::Result<BootState> {
    Ok(BootState::new(&slot_names(), TRIES)?)
}

/// The `boot.cmd` source: the slot choice, then the chosen slot's kernel.
pub fn boot_cmd() -> anyhow::Result<String> {
    let mut commands =
        String::from("echo \"SKERRY-BOOT slot=${skerry_slot}\"\nsetenv skerry_part\n");
    for (name, part) in &SLOTS {
        commands.push_str(&format!(
            "if test \"${{skerry_slot}}\" = \"{name}\"; then setenv skerry_part {}; fi\n",
            part.number
        ));
    }
    commands.push_str(&format!(
        "if load virtio 0:${{skerry_part}} {KERNEL_ADDR} /boot/Image; then\n\
         \x20 if load virtio 0:${{skerry_part}} {INITRD_ADDR} /boot/initrd.img; then\n\
         \x20   setenv bootargs \"console=ttyAMA0 panic=1 quiet skerry.slot=${{skerry_slot}}\"\n\
         \x20   booti {KERNEL_ADDR} {INITRD_ADDR}:${{filesize}} ${{fdtcontroladdr}}\n\
         \x20 fi\n\
         fi\n\
         echo \"SKERRY-FATAL slot ${{skerry_slot}} did not load; resetting\"\n\
         reset\n"
    ));
    Ok(boot_script(&factory_state()?, &commands))
}

/// Builds the factory disk at `path`: partitions, the boot script, slot A from
/// `slot_a` (a slot image), slot B zeros.
pub fn build_disk(path: &Path, slot_a: &Path, work: &Path) -> anyhow::Result<()> {
    need_tool("sgdisk", "gdisk")?;
    need_tool("mkfs.vfat", "dosfstools")?;
    need_tool("mcopy", "mtools")?;
    need_tool("mkimage", "u-boot-tools")?;
    let file =
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    file.set_len(DISK_SIZE)?;
    drop(file);
    let mut sgdisk = Command::new("sgdisk");
    sgdisk.arg("-o");
    for part in std::iter::once(BOOT_PART).chain(SLOTS.iter().map(|(_, p)| *p)) {
        let (first, last) = (part.offset / 512, (part.offset + part.size) / 512 - 1);
        sgdisk
            .arg(format!("-n{}:{first}:{last}", part.number))
            .arg(format!("-c{}:{}", part.number, part.name));
    }
    run_tool(sgdisk.arg(path)).context("partitioning the disk")?;
    run_tool(
        Command::new("mkfs.vfat")
            .arg(format!("--offset={}", BOOT_PART.offset / 512))
            .arg(path)
            .arg((BOOT_PART.size / 1024).to_string()),
    )
    .context("formatting the boot partition")?;
    let cmd = work.join("boot.cmd");
    let scr = work.join("boot.scr");
    std::fs::write(&cmd, boot_cmd()?).with_context(|| format!("writing {}", cmd.display()))?;
    run_tool(
        Command::new("mkimage")
            .args(["-A", "arm64", "-T", "script", "-C", "none", "-d"])
            .arg(&cmd)
            .arg(&scr),
    )
    .context("wrapping the boot script")?;
    run_tool(
        Command::new("mcopy")
            .arg("-i")
            .arg(format!("{}@@{}", path.display(), BOOT_PART.offset))
            .arg(&scr)
            .arg("::boot.scr"),
    )
    .context("copying boot.scr onto the boot partition")?;
    write_slot(path, "A", slot_a, None)?;
    Ok(())
}

/// Builds a slot image (ext4, [`SLOTS`]' size) holding `kernel` and `initrd` at `path`.
pub fn build_slot_image(
    path: &Path,
    kernel: &Path,
    initrd: &[u8],
    version: &semver::Version,
) -> anyhow::Result<()> {
    need_tool("mke2fs", "e2fsprogs")?;
    let tree = tempfile::Builder::new()
        .prefix("skerry-arm64-slot")
        .tempdir()
        .context("creating a slot tree")?;
    let boot = tree.path().join("boot");
    let etc = tree.path().join("etc/skerry");
    std::fs::create_dir_all(&boot)?;
    std::fs::create_dir_all(&etc)?;
    let image = boot.join("Image");
    if std::fs::hard_link(kernel, &image).is_err() {
        std::fs::copy(kernel, &image).with_context(|| format!("copying {}", kernel.display()))?;
    }
    std::fs::write(boot.join("initrd.img"), initrd)?;
    std::fs::write(etc.join("version"), format!("{version}\n"))?;
    let size = SLOTS[0].1.size;
    let _ = std::fs::remove_file(path);
    run_tool(
        Command::new("mke2fs")
            .args(["-q", "-F", "-t", "ext4", "-d"])
            .arg(tree.path())
            .arg(path)
            .arg(format!("{}k", size / 1024)),
    )
    .with_context(|| format!("making the slot image {}", path.display()))?;
    Ok(())
}

/// Writes slot image `image` into `slot`'s partition of `disk` (all of it, or only its
/// first `stop_after` bytes, as a power cut would leave it) and syncs the disk.
pub fn write_slot(
    disk: &Path,
    slot: &str,
    image: &Path,
    stop_after: Option<u64>,
) -> anyhow::Result<u64> {
    let part = slot_partition(slot)?;
    let mut from =
        std::fs::File::open(image).with_context(|| format!("opening {}", image.display()))?;
    let len = from.metadata()?.len();
    if len > part.size {
        bail!(
            "the slot image {} is {len} bytes; slot {slot} holds {}",
            image.display(),
            part.size
        );
    }
    let mut to = std::fs::OpenOptions::new()
        .write(true)
        .open(disk)
        .with_context(|| format!("opening {}", disk.display()))?;
    to.seek(SeekFrom::Start(part.offset))?;
    let want = stop_after.map_or(len, |n| n.min(len));
    let mut buf = vec![0u8; MIB as usize];
    let mut done = 0u64;
    while done < want {
        let n = (want - done).min(buf.len() as u64) as usize;
        from.read_exact(&mut buf[..n])?;
        to.write_all(&buf[..n])?;
        done += n as u64;
    }
    to.sync_all()
        .with_context(|| format!("syncing {}", disk.display()))?;
    Ok(done)
}

/// The environment flash of one board: bank 1 of the `virt` machine.
#[derive(Debug, Clone)]
pub struct EnvFlash {
    pub path: PathBuf,
}

impl EnvFlash {
    /// A fresh flash at `path`: `bootcmd` runs `boot.scr` from the boot partition, and
    /// the factory boot state.
    pub fn create(path: &Path) -> anyhow::Result<EnvFlash> {
        let mut vars = Vars::default();
        vars.set("bootdelay", "0");
        vars.set(
            "bootcmd",
            &format!(
                "virtio scan; if load virtio 0:{} {SCRIPT_ADDR} boot.scr; then source {SCRIPT_ADDR}; fi; echo \"SKERRY-FATAL no boot script\"; reset",
                BOOT_PART.number
            ),
        );
        let bytes = env::encode(&vars, ENV_LAYOUT.size, None)
            .map_err(|e| anyhow::anyhow!("encoding the environment: {e}"))?;
        std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))?;
        std::fs::OpenOptions::new()
            .write(true)
            .open(path)?
            .set_len(VIRT_FLASH_BANK)?;
        let flash = EnvFlash {
            path: path.to_owned(),
        };
        flash.store()?.commit(&factory_state()?)?;
        Ok(flash)
    }

    fn store(&self) -> anyhow::Result<UbootEnvStore<FileMedium>> {
        let medium = FileMedium::open(&self.path)
            .with_context(|| format!("opening the flash {}", self.path.display()))?;
        Ok(UbootEnvStore::new(medium, ENV_LAYOUT))
    }

    /// The boot state as U-Boot left it.
    pub fn load(&self) -> anyhow::Result<BootState> {
        Ok(self.store()?.load()?)
    }

    /// Begins the trial of `slot` (its image is written), as the installer would.
    pub fn begin_trial(&self, slot: &str) -> anyhow::Result<BootState> {
        let mut store = self.store()?;
        let mut state = store.load()?;
        state.begin_trial(&SlotName::new(slot)?)?;
        store.commit(&state)?;
        Ok(state)
    }

    /// A `fw_env.config` line for this flash (for `fw_printenv -c`).
    pub fn fw_env_config(&self) -> String {
        format!(
            "{} {:#x} {:#x} {:#x}\n",
            self.path.display(),
            ENV_LAYOUT.offset,
            ENV_LAYOUT.size,
            ENV_LAYOUT.size
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_do_not_overlap_and_fit_the_disk() {
        let mut parts: Vec<Partition> = SLOTS.iter().map(|(_, p)| *p).collect();
        parts.push(BOOT_PART);
        parts.sort_by_key(|p| p.offset);
        assert!(parts[0].offset >= MIB, "room for the GPT");
        for w in parts.windows(2) {
            assert!(w[0].offset + w[0].size <= w[1].offset, "{w:?}");
        }
        let last = parts[parts.len() - 1];
        assert!(
            last.offset + last.size + MIB / 2 <= DISK_SIZE,
            "room for the backup GPT"
        );
        assert!(slot_partition("C").is_err());
    }

    #[test]
    fn the_boot_script_loads_the_chosen_slot_and_resets_when_it_cannot() {
        let text = boot_cmd().unwrap();
        for needle in [
            "echo \"SKERRY-BOOT slot=${skerry_slot}\"",
            "if test \"${skerry_slot}\" = \"B\"; then setenv skerry_part 3; fi",
            "load virtio 0:${skerry_part} 0x40400000 /boot/Image",
            "booti 0x40400000 0x48000000:${filesize} ${fdtcontroladdr}",
            "saveenv",
            "\nreset\n",
        ] {
            assert!(text.contains(needle), "{needle:?} missing in\n{text}");
        }
    }
}
