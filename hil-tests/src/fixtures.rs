//! A fresh boot-state store of each backend, in a scratch directory, on a simulated board
//! whose slot A holds a healthy factory image.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context};
use skerry_boot_state::{BootState, SlotName, StoreSpec};

use crate::board::SimBoard;

/// The bootloaders Skerry persists boot state for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A redundant U-Boot environment, as RAUC's U-Boot scheme uses it.
    Uboot,
    /// A GRUB environment block.
    Grub,
    /// ChromeOS-style GPT partition attributes (priority, tries, successful).
    Gpt,
    /// The Raspberry Pi firmware's `autoboot.txt` and one-shot tryboot flag.
    Tryboot,
}

/// ChromeOS kernel partition type: `cgpt` shows priority/tries/successful for it.
const CHROMEOS_KERNEL_TYPE: &str = "FE3A2A5D-4F32-41A7-B725-ACCC3285A309";

impl Backend {
    pub const ALL: [Backend; 4] = [
        Backend::Uboot,
        Backend::Grub,
        Backend::Gpt,
        Backend::Tryboot,
    ];

    /// The store spec for this backend's files under `dir` (as `skerryctl boot` takes it).
    pub fn spec(self, dir: &Path) -> StoreSpec {
        let text = self.spec_text(dir);
        // The formats below are fixed and valid; a failure here is a bug in this file.
        text.parse()
            .unwrap_or_else(|e| panic!("fixture spec {text}: {e}"))
    }

    /// [`Backend::spec`] as text, as a board definition or `skerryctl boot --store` takes it.
    pub fn spec_text(self, dir: &Path) -> String {
        match self {
            Backend::Uboot => format!("uboot:{}/uboot.env,offset=0x2000,redundant", dir.display()),
            Backend::Grub => format!("grub:{}/grubenv", dir.display()),
            Backend::Gpt => format!("gpt:{}/disk.img,A=2,B=3", dir.display()),
            Backend::Tryboot => format!("tryboot:{}/boot,A=2,B=3", dir.display()),
        }
    }

    /// Creates the backend's files under `dir`, writes a fresh boot state (slot A good,
    /// slot B empty) with as many trial attempts as the bootloader counts, up to 3, and
    /// returns a powered-off board with the `factory` image in slot A.
    pub fn board(self, dir: &Path, factory: &[u8]) -> anyhow::Result<SimBoard> {
        match self {
            Backend::Gpt => make_gpt_disk(&dir.join("disk.img"))?,
            Backend::Tryboot => std::fs::create_dir_all(dir.join("boot"))?,
            Backend::Uboot | Backend::Grub => {}
        }
        let spec = self.spec(dir);
        let mut store = spec.open_for_init()?;
        let slots = [SlotName::new("A")?, SlotName::new("B")?];
        let tries = store.max_tries().min(3);
        store.commit(&BootState::new(&slots, tries)?)?;
        let mut images = BTreeMap::new();
        for slot in &slots {
            let path = dir.join(format!("slot-{slot}.img"));
            std::fs::write(&path, b"")?;
            images.insert(slot.clone(), path);
        }
        std::fs::write(&images[&slots[0]], factory)?;
        Ok(SimBoard::new(spec.open_simulated()?, images))
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Uboot => "U-Boot environment (redundant, RAUC variables)",
            Backend::Grub => "GRUB environment block (RAUC variables, N tries)",
            Backend::Gpt => "GPT attributes (ChromeOS priority/tries/successful)",
            Backend::Tryboot => "Raspberry Pi tryboot (autoboot.txt, one-shot flag)",
        })
    }
}

/// An 8 MiB sparse disk with an ESP and two ChromeOS-kernel-type slot partitions (2, 3),
/// partitioned by the real `sgdisk`.
fn make_gpt_disk(path: &Path) -> anyhow::Result<()> {
    let disk = std::fs::File::create(path)?;
    disk.set_len(8 << 20)?;
    let status = Command::new("sgdisk")
        .args(["-o", "-n", "1:2048:+1M", "-t", "1:ef00"])
        .args([
            "-n",
            "2:0:+2M",
            "-t",
            &format!("2:{CHROMEOS_KERNEL_TYPE}"),
            "-c",
            "2:A",
        ])
        .args([
            "-n",
            "3:0:+2M",
            "-t",
            &format!("3:{CHROMEOS_KERNEL_TYPE}"),
            "-c",
            "3:B",
        ])
        .arg(path)
        .output()
        .context("running sgdisk (install the Debian package gdisk)")?;
    if !status.status.success() {
        bail!(
            "sgdisk failed to partition {}: {}",
            path.display(),
            String::from_utf8_lossy(&status.stderr)
        );
    }
    Ok(())
}
