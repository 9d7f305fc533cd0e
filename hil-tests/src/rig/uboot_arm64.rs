//! The arm64 U-Boot board, `qemu-arm64-uboot`: QEMU's arm64 `virt` machine (TCG,
//! `cortex-a57`) with Debian's `qemu_arm64` U-Boot, its environment in flash bank 1,
//! our generated boot script on a virtio disk, and busybox guests in two A/B slots.
//!
//! - Boot chain: U-Boot loads `boot.scr` from the disk's boot partition; the script
//!   picks a slot from the environment exactly as the model's power-on does, counts a
//!   trial's attempt down and `saveenv`s it before it loads that slot's kernel and
//!   initramfs ([`media`]). Falling back is U-Boot's own doing.
//! - Guests: no arm64 Rust target exists here, so no skerryd runs: each slot's `/init`
//!   is a busybox script that prints `SKERRY-READY slot=S version=V`, or for a fault
//!   panics or hangs with the watchdog armed ([`guest`]). Scenarios needing skerryd are
//!   not applicable on this board.
//! - Watchdog: QEMU's `i6300esb` on the `virt` machine's PCI bus with
//!   `-action watchdog=reset` (the guest loads `i6300esb.ko`, heartbeat
//!   [`guest::WATCHDOG_SECS`] s); QMP's `WATCHDOG` event tells its resets from others.
//! - Install: host-side while powered off ([`Board::install_host_side`]): the slot image
//!   is written into the inactive slot's partition, then the trial begins in the
//!   environment through [`skerry_boot_state::uboot::UbootEnvStore`] on the flash image.
//! - Power cut: SIGKILL to QEMU; the disk and flash files stay.
//!
//! # Layout
//! - this file: [`Arm64Site`] (what every board of a run shares) and [`UbootArm64Board`];
//! - [`guest`]: the pinned arm64 packages and each release's `/init` and initramfs;
//! - [`media`]: the disk, the boot script, slot images and the environment flash;
//! - [`releases`]: the board's [`ReleaseFactory`].

pub mod guest;
pub mod media;
pub mod releases;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};

use crate::qemu::files::{need_file, need_tool, UBOOT_QEMU_ARM64};
use crate::qemu::{DriveBus, MachineConfig, Qemu, ResetPolicy};
use crate::rig::qemu::console_lines::watchdog_timeout;
use crate::rig::qemu::{copy_disk, EventTranslator};
use crate::rig::{
    ApiEndpoint, Board, BoardEvent, BootView, Capabilities, PublishedRelease, ReleaseFactory,
    ReleaseProperty, ReleaseRequest, RunningGuest, TimedEvent,
};

pub use guest::GuestFiles;
pub use media::EnvFlash;
pub use releases::Arm64Releases;

/// The table name of this board.
pub const BOARD_NAME: &str = "qemu-arm64-uboot";
/// Guest memory.
const MEMORY_MIB: u32 = 512;

/// What every board of a run shares: the unpacked guest packages and the factory disk
/// (slot A holding the first release, a good one).
#[derive(Debug)]
pub struct Arm64Site {
    dir: PathBuf,
    guest: GuestFiles,
    first: semver::Version,
    disk: PathBuf,
}

impl Arm64Site {
    /// Unpacks the guest packages into `dir` and builds the factory disk of `first`.
    pub fn provision(dir: &Path, first: &semver::Version) -> anyhow::Result<Arm64Site> {
        need_tool(
            "qemu-system-aarch64",
            "qemu-system-arm (from bookworm-backports)",
        )?;
        need_file(UBOOT_QEMU_ARM64, "u-boot-qemu")?;
        let guest = GuestFiles::unpack(&dir.join("guest"))?;
        let init = guest::init_script(first, &ReleaseProperty::Good).map_err(anyhow::Error::msg)?;
        let slot_a = dir.join(format!("slot-{first}.ext4"));
        media::build_slot_image(
            &slot_a,
            &guest.kernel,
            &guest::initramfs(&guest, &init)?,
            first,
        )?;
        let disk = dir.join("factory-disk.img");
        media::build_disk(&disk, &slot_a, dir)?;
        Ok(Arm64Site {
            dir: dir.to_owned(),
            guest,
            first: first.clone(),
            disk,
        })
    }

    pub fn guest(&self) -> &GuestFiles {
        &self.guest
    }

    /// The release slot A holds on the factory disk.
    pub fn first_version(&self) -> &semver::Version {
        &self.first
    }

    /// The factory disk (each board copies it).
    pub fn factory_disk(&self) -> &Path {
        &self.disk
    }

    /// The site's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// A running or powered-off arm64 U-Boot board.
#[derive(Debug)]
pub struct UbootArm64Board {
    dir: tempfile::TempDir,
    disk: PathBuf,
    flash: EnvFlash,
    releases: Arm64Releases,
    machine: Option<Qemu>,
    past_consoles: String,
    translator: EventTranslator,
    events: Vec<TimedEvent>,
    running: Option<RunningGuest>,
    ready_at: Option<Instant>,
    installed: BTreeMap<String, semver::Version>,
    power_ons: u32,
}

impl UbootArm64Board {
    /// A fresh, powered-off board of `site`: its own copy of the factory disk and a
    /// fresh environment flash (A good, B bad).
    pub fn from_site(site: &Arc<Arm64Site>) -> anyhow::Result<UbootArm64Board> {
        let dir = tempfile::Builder::new()
            .prefix("skerry-arm64-board")
            .tempdir()
            .context("creating the arm64 board's directory")?;
        let disk = dir.path().join("disk.img");
        copy_disk(site.factory_disk(), &disk)?;
        let flash = EnvFlash::create(&dir.path().join("flash1.img"))?;
        let releases = Arm64Releases::new(site, dir.path().to_owned());
        let mut installed = BTreeMap::new();
        installed.insert("A".to_owned(), site.first_version().clone());
        Ok(UbootArm64Board {
            dir,
            disk,
            flash,
            releases,
            machine: None,
            past_consoles: String::new(),
            translator: EventTranslator::default(),
            events: Vec::new(),
            running: None,
            ready_at: None,
            installed,
            power_ons: 0,
        })
    }

    /// The board's disk image.
    pub fn disk(&self) -> &Path {
        &self.disk
    }

    /// The board's environment flash.
    pub fn flash(&self) -> &EnvFlash {
        &self.flash
    }

    /// The running machine (QMP), if powered on.
    pub fn machine(&mut self) -> Option<&mut Qemu> {
        self.machine.as_mut()
    }

    /// How many times QEMU was started.
    pub fn power_ons(&self) -> u32 {
        self.power_ons
    }

    /// The slot an install writes: the one the bootloader would not start now.
    fn inactive_slot(&self) -> anyhow::Result<String> {
        let state = self.flash.load()?;
        let active = state
            .next_boot()
            .context("the environment holds no bootable slot")?
            .to_string();
        media::SLOTS
            .iter()
            .map(|(n, _)| (*n).to_owned())
            .find(|n| *n != active)
            .context("no slot besides the active one")
    }

    /// An install cut short by a power cut: only the first `after_bytes` of the slot
    /// image reach the inactive slot and its trial never begins. Returns the slot.
    pub fn install_interrupted(
        &mut self,
        release: &PublishedRelease,
        after_bytes: u64,
    ) -> anyhow::Result<String> {
        self.must_be_off("install")?;
        let slot = self.inactive_slot()?;
        media::write_slot(&self.disk, &slot, &release.image, Some(after_bytes))?;
        self.installed.remove(&slot);
        Ok(slot)
    }

    fn must_be_off(&mut self, doing: &str) -> anyhow::Result<()> {
        self.refresh();
        if self.machine.is_some() {
            bail!("{BOARD_NAME} is powered on: cut its power before it can {doing} host-side");
        }
        Ok(())
    }

    fn machine_config(&self) -> MachineConfig {
        MachineConfig::new("qemu-system-aarch64", "virt")
            .cpu("cortex-a57")
            .memory_mib(MEMORY_MIB)
            .bios(Path::new(UBOOT_QEMU_ARM64))
            .drive(DriveBus::Pflash { unit: 1 }, &self.flash.path, false)
            .drive(DriveBus::Virtio { id: "disk".into() }, &self.disk, false)
            .device("i6300esb")
            .watchdog_action("reset")
            .reset(ResetPolicy::Restart)
    }

    fn retire_machine(&mut self) {
        if let Some(mut machine) = self.machine.take() {
            self.drain_events(&mut machine);
            machine.power_cut();
            self.past_consoles.push_str(&machine.console().transcript());
        }
        self.running = None;
        self.ready_at = None;
    }

    fn drain_events(&mut self, machine: &mut Qemu) {
        let _ = machine.qmp().pump(Duration::from_millis(1));
        for event in machine.qmp().take_events() {
            if let Some(timed) = self.translator.translate(&event) {
                // A reset after the guest came up restarts the machine: it runs no more.
                if self.ready_at.is_some_and(|ready| timed.at >= ready) {
                    self.running = None;
                    self.ready_at = None;
                }
                self.events.push(timed);
            }
        }
    }

    fn refresh(&mut self) {
        if let Some(mut machine) = self.machine.take() {
            self.drain_events(&mut machine);
            let exited = machine.has_exited();
            self.machine = Some(machine);
            if exited {
                self.retire_machine();
            }
        }
    }
}

/// Parses the rest of a `SKERRY-READY` line: `slot=S version=V`.
pub fn ready_line(rest: &str) -> Result<RunningGuest, String> {
    let line = rest.lines().next().unwrap_or("").trim();
    let value = |key: &str| {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
            .filter(|v| !v.is_empty() && v.len() <= 64)
            .map(str::to_owned)
            .ok_or_else(|| format!("the SKERRY-READY line {line:?} has no {key}="))
    };
    let slot = value("slot")?;
    if !slot.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(format!("the SKERRY-READY line {line:?} names no slot"));
    }
    Ok(RunningGuest {
        slot,
        version: value("version")?,
    })
}

impl Board for UbootArm64Board {
    fn name(&self) -> String {
        BOARD_NAME.to_owned()
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            runs_skerryd: false,
            watchdog_resets: true,
            real_kernel: true,
            power_cut: true,
            host_side_install: true,
            hang_daemon: false,
            faults: Arm64Releases::faults(),
            failing_health_check: false,
        }
    }

    fn power_on(&mut self) -> anyhow::Result<()> {
        self.refresh();
        if self.machine.is_some() {
            bail!("{BOARD_NAME} is already powered on");
        }
        let run_dir = self.dir.path().join(format!("run-{}", self.power_ons + 1));
        std::fs::create_dir_all(&run_dir)
            .with_context(|| format!("creating {}", run_dir.display()))?;
        let machine = Qemu::start(&self.machine_config(), &run_dir)?;
        self.power_ons += 1;
        self.translator = EventTranslator::default();
        self.machine = Some(machine);
        Ok(())
    }

    fn power_cut(&mut self) -> anyhow::Result<()> {
        if self.machine.is_some() {
            self.retire_machine();
            self.events.push(TimedEvent {
                at: Instant::now(),
                event: BoardEvent::PowerCut,
            });
        }
        Ok(())
    }

    fn expect_console(&mut self, needle: &str, timeout: Duration) -> anyhow::Result<String> {
        let Some(machine) = self.machine.as_mut() else {
            bail!("{BOARD_NAME} is powered off: cannot wait for {needle:?}");
        };
        let found = machine.console().expect(needle, timeout);
        self.refresh();
        Ok(found?)
    }

    fn wait_running(&mut self, timeout: Duration) -> anyhow::Result<String> {
        let deadline = Instant::now() + timeout;
        self.expect_console("SKERRY-READY", timeout)?;
        let left = deadline.saturating_duration_since(Instant::now());
        let rest = self.expect_console("\n", left.max(Duration::from_secs(5)))?;
        let guest = ready_line(&rest).map_err(anyhow::Error::msg)?;
        let slot = guest.slot.clone();
        self.running = Some(guest);
        self.ready_at = Some(Instant::now());
        Ok(slot)
    }

    fn api(&self) -> Option<ApiEndpoint> {
        None
    }

    fn take_events(&mut self) -> Vec<BoardEvent> {
        self.take_timed_events()
            .into_iter()
            .map(|e| e.event)
            .collect()
    }

    fn take_timed_events(&mut self) -> Vec<TimedEvent> {
        self.refresh();
        std::mem::take(&mut self.events)
    }

    fn transcript(&self) -> String {
        let mut all = self.past_consoles.clone();
        if let Some(machine) = &self.machine {
            all.push_str(&machine.console_transcript());
        }
        all
    }

    fn poll(&mut self) -> anyhow::Result<()> {
        self.refresh();
        Ok(())
    }

    fn releases(&mut self) -> Option<&mut dyn ReleaseFactory> {
        Some(&mut self.releases)
    }

    fn watchdog_timeout(&self) -> Option<Duration> {
        watchdog_timeout(&self.transcript())
    }

    fn install_host_side(&mut self, release: &PublishedRelease) -> anyhow::Result<()> {
        self.must_be_off(&format!("install {}", release.version))?;
        let slot = self.inactive_slot()?;
        media::write_slot(&self.disk, &slot, &release.image, None)
            .with_context(|| format!("writing {} into slot {slot}", release.version))?;
        self.installed.remove(&slot);
        self.flash
            .begin_trial(&slot)
            .with_context(|| format!("beginning the trial of slot {slot}"))?;
        self.installed.insert(slot, release.version.clone());
        Ok(())
    }

    fn boot_view(&mut self) -> Option<anyhow::Result<BootView>> {
        self.refresh();
        Some(self.flash.load().map(|state| BootView {
            state,
            installed: self.installed.clone(),
            running: self.running.clone(),
        }))
    }

    fn shut_down(&mut self) -> anyhow::Result<()> {
        self.power_cut()
    }
}

impl Drop for UbootArm64Board {
    fn drop(&mut self) {
        if let Some(mut machine) = self.machine.take() {
            machine.power_cut();
        }
    }
}

/// Publishes `version` as `property` on `board` (a shorthand for tests).
pub fn publish(
    board: &mut UbootArm64Board,
    version: semver::Version,
    property: ReleaseProperty,
) -> anyhow::Result<PublishedRelease> {
    board
        .releases
        .publish(&ReleaseRequest { version, property })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ready_line_names_slot_and_version() {
        let got = ready_line(" slot=B version=1.1.0\r\nmore").unwrap();
        assert_eq!(
            got,
            RunningGuest {
                slot: "B".into(),
                version: "1.1.0".into()
            }
        );
        assert!(ready_line(" version=1.0.0").unwrap_err().contains("slot="));
        assert!(ready_line(" slot=A/ version=1").is_err());
    }
}
