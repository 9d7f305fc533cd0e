//! Where things live under `skerryd --root DIR`, the directory that stands in for the
//! machine in development and tests. On a device the same names sit under `/`
//! (`/var`, `/etc`, `/run`) and the board definition comes from the slot image.
//!
//! ```text
//! DIR/board.json              the board definition (BoardDefinition)
//! DIR/pki/                    ca.crt, node.crt, node.key (skerryctl gen secrets --out DIR/pki)
//! DIR/run/cmdline             what the bootloader passed: "skerry.slot=A" (written by the
//!                             power-on step of the simulated board)
//! DIR/run/power-request       what the daemon asked for when it stopped: "reboot",
//!                             "reboot tryboot", "shutdown" (read by the simulated board)
//! DIR/var/skerry/             /var: everything persisted, each format versioned
//!     state/                  the runtime's persistent resources (FileLog)
//!     config/                 the config in effect, its history, a pending try
//!     upgrade/                the upgrade history
//!     installer/              the installer's device state (trusted root, floors, slots)
//!     time/                   the persisted time floor
//! DIR/etc/                    rendered files the daemon owns: hostname, hosts, resolv.conf
//! DIR/config.yaml             the factory machine config (optional)
//! ```
//!
//! On a device ([`Layout::device`], `skerryd --root / --device`) the root is `/` and the
//! slot is read-only, so three things move (docs/os-image.md):
//!
//! ```text
//! /etc/skerry/board.toml      the board definition the image was built for (skerry-boards),
//!                             turned into a BoardDefinition by crate::device_board
//! /etc/skerry/config.yaml     the factory machine config
//! /var/skerry/pki/            the API's TLS material (moved from the ESP on first boot)
//! /var/skerry/etc/            the rendered files; PID 1 bind-mounts them over /etc/...
//! ```

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The most bytes of `board.json` and `run/cmdline` we read.
pub const MAX_SMALL_FILE: u64 = 64 * 1024;

/// The paths of one machine root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    root: PathBuf,
    mode: Mode,
}

/// Whether the root is a development directory or a device's `/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `skerryd --root DIR`: everything under DIR, the board in `DIR/board.json`.
    Root,
    /// `skerryd --root / --device`: a read-only slot as `/`, writable files under `/var`.
    Device,
}

impl Layout {
    /// The layout under `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Layout {
            root: root.into(),
            mode: Mode::Root,
        }
    }

    /// A device's layout: root `/`, the board from `/etc/skerry/board.toml`, rendered
    /// files and TLS material under `/var/skerry`.
    pub fn device() -> Self {
        Layout::device_under("/")
    }

    /// The device layout under `root` (tests lay out a device tree in a directory).
    pub fn device_under(root: impl Into<PathBuf>) -> Self {
        Layout {
            root: root.into(),
            mode: Mode::Device,
        }
    }

    /// Root directory or device.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The machine root itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `DIR/board.json`; on a device `/etc/skerry/board.toml`.
    pub fn board(&self) -> PathBuf {
        match self.mode {
            Mode::Root => self.root.join("board.json"),
            Mode::Device => self.root.join("etc/skerry/board.toml"),
        }
    }

    /// `DIR/config.yaml`; on a device `/etc/skerry/config.yaml`: the factory config.
    pub fn factory_config(&self) -> PathBuf {
        match self.mode {
            Mode::Root => self.root.join("config.yaml"),
            Mode::Device => self.root.join("etc/skerry/config.yaml"),
        }
    }

    /// `DIR/pki`; on a device `/var/skerry/pki`: the API's TLS material.
    pub fn pki(&self) -> PathBuf {
        match self.mode {
            Mode::Root => self.root.join("pki"),
            Mode::Device => self.var().join("pki"),
        }
    }

    /// `DIR/run`: lost at every boot.
    pub fn run(&self) -> PathBuf {
        self.root.join("run")
    }

    /// `DIR/run/cmdline`.
    pub fn cmdline(&self) -> PathBuf {
        self.run().join("cmdline")
    }

    /// `DIR/run/power-request`.
    pub fn power_request(&self) -> PathBuf {
        self.run().join("power-request")
    }

    /// `DIR/var/skerry`.
    pub fn var(&self) -> PathBuf {
        self.root.join("var").join("skerry")
    }

    /// The runtime's persistent resources.
    pub fn state(&self) -> PathBuf {
        self.var().join("state")
    }

    /// The config store.
    pub fn config(&self) -> PathBuf {
        self.var().join("config")
    }

    /// The upgrade history.
    pub fn upgrade(&self) -> PathBuf {
        self.var().join("upgrade")
    }

    /// The installer's device state.
    pub fn installer(&self) -> PathBuf {
        self.var().join("installer")
    }

    /// The persisted time floor.
    pub fn time(&self) -> PathBuf {
        self.var().join("time")
    }

    /// `DIR/etc`; on a device `/var/skerry/etc`: the rendered files.
    pub fn etc(&self) -> PathBuf {
        match self.mode {
            Mode::Root => self.root.join("etc"),
            Mode::Device => self.var().join("etc"),
        }
    }

    /// A path from the board definition, relative to the root unless absolute.
    pub fn resolve(&self, path: &Path) -> PathBuf {
        if path.is_absolute() {
            path.to_owned()
        } else {
            self.root.join(path)
        }
    }

    /// Creates the directories the daemon writes into; an error names the directory
    /// (a file in the place of `etc` says which one is in the way).
    pub fn create_dirs(&self) -> std::io::Result<()> {
        for dir in [
            self.run(),
            self.state(),
            self.config(),
            self.upgrade(),
            self.installer(),
            self.time(),
            self.etc(),
        ] {
            std::fs::create_dir_all(&dir).map_err(|e| {
                std::io::Error::new(
                    e.kind(),
                    format!("cannot create the directory {}: {e}", dir.display()),
                )
            })?;
        }
        Ok(())
    }
}

/// What the board is: its name, its boot store, its slots, its watchdog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BoardDefinition {
    /// The board's name as releases target it, e.g. "rpi4", "qemu-x86_64".
    pub name: String,
    /// The boot store, as `skerryctl boot` writes it (`uboot:boot/uboot.env,redundant`);
    /// relative paths are under the root.
    pub boot_store: String,
    /// Each slot's name and image path (relative paths are under the root).
    pub slots: Vec<SlotDefinition>,
    /// The watchdog device.
    #[serde(default)]
    pub watchdog: BoardWatchdog,
    /// The slot's root is mounted through dm-verity: an install must carry the
    /// release's verity parameters into the boot environment (docs/os-image.md).
    #[serde(default)]
    pub verified_root: bool,
}

/// One A/B slot of the board.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlotDefinition {
    /// "A", "B".
    pub name: String,
    /// The slot's image file or block device.
    pub image: PathBuf,
}

/// The board's watchdog.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind", deny_unknown_fields)]
pub enum BoardWatchdog {
    /// No watchdog (development only: a hung daemon is not reset).
    #[default]
    None,
    /// The simulated board's watchdog: a fake outside the daemon that listens on a Unix
    /// datagram socket (relative paths under the root), so it keeps counting, and fires,
    /// while the daemon is stopped or hung.
    Simulated {
        /// The socket the board's fake watchdog listens on.
        socket: PathBuf,
        /// As for `Linux`: the board armed it before the daemon started.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        armed_at_boot_secs: Option<u32>,
    },
    /// The Linux watchdog device.
    Linux {
        /// Usually `/dev/watchdog0`.
        device: PathBuf,
        /// Set on a device, where PID 1 arms the watchdog before the root is mounted
        /// (docs/os-image.md): the timeout the daemon keeps it fed with while the
        /// machine config has no watchdog section. A config may change the timeout but
        /// not leave an armed device unfed. `None` (`--root` development boards): the
        /// watchdog is armed only when the config asks.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        armed_at_boot_secs: Option<u32>,
    },
}

impl BoardWatchdog {
    /// The timeout to feed with when the config names none: the one PID 1 armed.
    pub fn armed_at_boot(&self) -> Option<std::time::Duration> {
        match self {
            BoardWatchdog::Linux {
                armed_at_boot_secs: Some(secs),
                ..
            }
            | BoardWatchdog::Simulated {
                armed_at_boot_secs: Some(secs),
                ..
            } => Some(std::time::Duration::from_secs(u64::from(*secs))),
            _ => None,
        }
    }
}

/// Why the board definition or the command line could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    /// The file could not be read.
    #[error("could not read {path}")]
    Read {
        /// Which file.
        path: PathBuf,
        /// Why.
        #[source]
        source: skerry_medium::MediumError,
    },
    /// The command line names a slot the board does not have.
    #[error("{cmdline} names slot {slot:?} (skerry.slot={slot}), which the board definition {board} does not have; its slots are {slots}")]
    UnknownSlot {
        /// The command line file.
        cmdline: PathBuf,
        /// The board definition.
        board: PathBuf,
        /// The slot named.
        slot: String,
        /// The board's slots, comma-separated.
        slots: String,
    },
    /// The board definition is not valid.
    #[error("{path} is not a valid board definition: {message}")]
    Board {
        /// Which file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// Reads a file of at most `limit` bytes, refusing a directory, a FIFO, a socket or a
/// device before opening it: opening a FIFO for reading blocks until a writer comes,
/// which would hang the daemon on a damaged disk. A missing file is an error for which
/// [`MediumError::is_not_found`](skerry_medium::MediumError::is_not_found) holds.
pub fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>, skerry_medium::MediumError> {
    use skerry_medium::Medium as _;
    let medium = skerry_medium::FileMedium::open(path)?;
    let len = medium.len()?;
    if len > limit {
        return Err(skerry_medium::MediumError::TooLarge {
            path: path.to_owned(),
            len,
            limit,
        });
    }
    medium.read_all()
}

/// Reads a small file, refusing a directory, a FIFO or more than [`MAX_SMALL_FILE`] bytes.
pub fn read_small(path: &Path) -> Result<Vec<u8>, LayoutError> {
    read_bounded(path, MAX_SMALL_FILE).map_err(|source| LayoutError::Read {
        path: path.to_owned(),
        source,
    })
}

impl BoardDefinition {
    /// Reads `DIR/board.json`, or on a device derives it from `/etc/skerry/board.toml`
    /// and the partitions the kernel lists.
    pub fn load(layout: &Layout) -> Result<Self, LayoutError> {
        let path = layout.board();
        if layout.mode() == Mode::Device {
            return crate::device_board::load(&path, &layout.root().join("sys/class/block"));
        }
        let bytes = read_small(&path)?;
        let board: BoardDefinition =
            serde_json::from_slice(&bytes).map_err(|e| LayoutError::Board {
                path: path.clone(),
                message: e.to_string(),
            })?;
        board
            .check()
            .map_err(|message| LayoutError::Board { path, message })?;
        Ok(board)
    }

    fn check(&self) -> Result<(), String> {
        if self.name.is_empty() || self.name.len() > 64 {
            return Err("name must be 1 to 64 characters".into());
        }
        if self.slots.len() != 2 {
            return Err(format!(
                "an A/B board has 2 slots, not {}",
                self.slots.len()
            ));
        }
        if self.slots[0].name == self.slots[1].name {
            return Err(format!("slot {} is listed twice", self.slots[0].name));
        }
        Ok(())
    }

    /// Refuses a booted slot (from `run/cmdline`) that this board does not define: no
    /// boot-state or upgrade step can be right on a slot the board does not have.
    pub fn check_booted(&self, layout: &Layout, slot: &str) -> Result<(), LayoutError> {
        if self.slots.iter().any(|s| s.name == slot) {
            return Ok(());
        }
        Err(LayoutError::UnknownSlot {
            cmdline: layout.cmdline(),
            board: layout.board(),
            slot: slot.to_owned(),
            slots: self
                .slots
                .iter()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        })
    }

    /// The slot's image path under `layout`.
    pub fn slot_image(&self, layout: &Layout, slot: &str) -> Option<PathBuf> {
        self.slots
            .iter()
            .find(|s| s.name == slot)
            .map(|s| layout.resolve(&s.image))
    }
}

/// The slot the bootloader started, from `skerry.slot=NAME` on the command line; `None`
/// when the file is missing or names no slot.
pub fn booted_slot(layout: &Layout) -> Result<Option<String>, LayoutError> {
    let path = layout.cmdline();
    if !path.exists() {
        return Ok(None);
    }
    let bytes = read_small(&path)?;
    let text = String::from_utf8_lossy(&bytes);
    Ok(text
        .split_ascii_whitespace()
        .find_map(|arg| arg.strip_prefix("skerry.slot="))
        .filter(|s| !s.is_empty() && s.len() <= 16)
        .map(str::to_owned))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_keeps_writable_files_under_var_and_the_board_in_the_slot() {
        let device = Layout::device();
        assert_eq!(device.mode(), Mode::Device);
        assert_eq!(device.board(), Path::new("/etc/skerry/board.toml"));
        assert_eq!(
            device.factory_config(),
            Path::new("/etc/skerry/config.yaml")
        );
        assert_eq!(device.pki(), Path::new("/var/skerry/pki"));
        assert_eq!(device.etc(), Path::new("/var/skerry/etc"));
        assert_eq!(device.cmdline(), Path::new("/run/cmdline"));
        assert_eq!(device.power_request(), Path::new("/run/power-request"));
        // --root DIR is as it was.
        let root = Layout::new("/m");
        assert_eq!(root.mode(), Mode::Root);
        assert_eq!(root.board(), Path::new("/m/board.json"));
        assert_eq!(root.factory_config(), Path::new("/m/config.yaml"));
        assert_eq!(root.pki(), Path::new("/m/pki"));
        assert_eq!(root.etc(), Path::new("/m/etc"));
    }

    #[test]
    fn a_device_board_is_derived_from_board_toml_and_sysfs() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::device_under(dir.path());
        std::fs::create_dir_all(dir.path().join("etc/skerry")).unwrap();
        let toml = skerry_boards::shipped("qemu-x86_64")
            .unwrap()
            .unwrap()
            .to_toml()
            .unwrap();
        std::fs::write(layout.board(), toml).unwrap();
        let class = dir.path().join("sys/class/block");
        for (n, label) in [(1, "esp"), (2, "root-a"), (3, "root-b"), (4, "var")] {
            let part = dir.path().join(format!("sys/devices/vda/vda{n}"));
            std::fs::create_dir_all(&part).unwrap();
            std::fs::write(
                part.join("uevent"),
                format!("DEVNAME=vda{n}\nDEVTYPE=partition\nPARTN={n}\nPARTNAME={label}\n"),
            )
            .unwrap();
            std::fs::create_dir_all(&class).unwrap();
            std::os::unix::fs::symlink(&part, class.join(format!("vda{n}"))).unwrap();
        }
        let board = BoardDefinition::load(&layout).unwrap();
        assert_eq!(board.boot_store, "grub:/boot/efi/EFI/BOOT/grubenv");
        assert_eq!(
            board.slot_image(&layout, "B").unwrap(),
            Path::new("/dev/vda3")
        );
        // A broken definition is named.
        std::fs::write(layout.board(), "name = 1\n").unwrap();
        let error = BoardDefinition::load(&layout).unwrap_err().to_string();
        assert!(error.contains("board.toml"), "{error}");
    }
}
