//! The bootloaders as the simulation plays them: what each one does at power-on to the
//! bytes its store keeps, kept apart from [`BootStore`], which only persists the state.
//!
//! A device runs production code against a [`BootStore`]; the simulated board
//! (`hil-tests`), `skerryctl boot simulate-boot` and the conformance suite also need the
//! bootloader's side, which is a [`Firmware`] for each store: the generated U-Boot script,
//! the generated GRUB fragment, ChromeOS vboot on the GPT attributes, and the Raspberry Pi
//! firmware's `autoboot.txt`/tryboot rules. Each works on the stored bytes by the real
//! bootloader's rules, never by writing the model's next state, so the conformance suite
//! checks the store's mapping against the model through the bootloader.
//!
//! A firmware may keep state outside the store, as the Raspberry Pi firmware keeps its
//! one-shot tryboot flag: it is set by the running system's reboot request
//! ([`Firmware::request_reboot`]), lost on a power cut, and used up by the next boot.
//!
//! # Layout
//! - this module: [`Firmware`], the store-to-firmware link [`Simulated`], a store with its
//!   firmware [`Device`], and the same behind a trait object, [`Machine`].
//! - `uboot`, `grub`: the script and fragment rules on the variables.
//! - The GPT and tryboot firmware live beside their stores, in
//!   [`crate::gpt::firmware`] and [`crate::tryboot::firmware`].

mod grub;
mod uboot;

pub use grub::GrubFragment;
pub use uboot::UbootScript;

use crate::gpt::firmware::Vboot;
use crate::gpt::GptStore;
use crate::grub::GrubEnvStore;
use crate::medium::{FileMedium, Medium};
use crate::spec::StoreSpec;
use crate::state::{BootState, GiveUp, SlotName, SlotStatus};
use crate::store::{BootStore, StoreError};
use crate::tryboot::firmware::PiFirmware;
use crate::tryboot::{TrybootStore, TRYBOOT_REBOOT_ARG};
use crate::uboot::{UbootEnvStore, UbootLayout};

/// A bootloader's side of the store `S`.
pub trait Firmware<S> {
    /// When this bootloader gives up a trial, in the model's terms: the suite drives the
    /// model with [`BootState::power_on_with`] and this rule.
    const GIVE_UP: GiveUp = GiveUp::AfterLastAttempt;

    /// The running system reboots with `reboot(2)`'s argument `arg` (`"0 tryboot"`).
    /// Most bootloaders ignore it.
    fn request_reboot(&mut self, arg: &str) {
        let _ = arg;
    }

    /// Power is cut (or a watchdog resets the board): whatever the firmware kept outside
    /// the store is lost.
    fn power_cut(&mut self) {}

    /// Power-on: the bootloader reads `store`'s bytes, writes what it writes, and starts
    /// a slot, which it returns.
    fn power_on(&mut self, store: &mut S) -> Result<SlotName, StoreError>;
}

/// A store whose bootloader the simulation knows.
pub trait Simulated: BootStore + Sized {
    /// The bootloader that reads this store.
    type Firmware: Firmware<Self> + Default + std::fmt::Debug;

    /// One power-on by a firmware that kept nothing outside the store (a cold start, a
    /// power cut, a plain reboot); returns the slot started.
    fn simulate_boot(&mut self) -> Result<SlotName, StoreError> {
        Self::Firmware::default().power_on(self)
    }

    /// One power-on right after the running system asked for `reboot(2)` with `arg`.
    fn simulate_boot_after(&mut self, arg: &str) -> Result<SlotName, StoreError> {
        let mut firmware = Self::Firmware::default();
        firmware.request_reboot(arg);
        firmware.power_on(self)
    }
}

impl<M: Medium> Simulated for UbootEnvStore<M> {
    type Firmware = UbootScript;
}

impl<M: Medium> Simulated for GrubEnvStore<M> {
    type Firmware = GrubFragment;
}

impl<M: Medium> Simulated for GptStore<M> {
    type Firmware = Vboot;
}

impl<M: Medium> Simulated for TrybootStore<M> {
    type Firmware = PiFirmware;
}

/// The reboot an update engine asks for in `state`: `reboot "0 tryboot"` when the slot
/// the state starts next is on trial (the engine has just begun that trial), a plain
/// reboot otherwise. Only the Raspberry Pi firmware tells them apart.
pub fn reboot_request(state: &BootState) -> Option<&'static str> {
    let next = state.next_boot()?;
    let on_trial = matches!(state.status(next), Ok(SlotStatus::Trial { .. }));
    on_trial.then_some(TRYBOOT_REBOOT_ARG)
}

/// A store and the bootloader that reads it: one simulated device.
#[derive(Debug)]
pub struct Device<S: Simulated> {
    store: S,
    firmware: S::Firmware,
}

impl<S: Simulated> Device<S> {
    /// A device whose firmware starts with nothing outside the store (a cold power-on).
    pub fn new(store: S) -> Self {
        Device {
            store,
            firmware: S::Firmware::default(),
        }
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The store, to load and commit as the running system does.
    pub fn store_mut(&mut self) -> &mut S {
        &mut self.store
    }

    /// Gives the store back.
    pub fn into_store(self) -> S {
        self.store
    }

    /// The firmware, with whatever it keeps outside the store.
    pub fn firmware(&self) -> &S::Firmware {
        &self.firmware
    }

    /// See [`Firmware::request_reboot`].
    pub fn request_reboot(&mut self, arg: &str) {
        self.firmware.request_reboot(arg);
    }

    /// See [`Firmware::power_cut`].
    pub fn power_cut(&mut self) {
        self.firmware.power_cut();
    }

    /// See [`Firmware::power_on`].
    pub fn power_on(&mut self) -> Result<SlotName, StoreError> {
        self.firmware.power_on(&mut self.store)
    }
}

/// A simulated device of any backend, as the simulated board and `skerryctl` hold it.
pub trait Machine: std::fmt::Debug {
    /// The store, read as the running system reads it.
    fn store(&self) -> &dyn BootStore;
    /// The store, to commit as the running system does.
    fn store_mut(&mut self) -> &mut dyn BootStore;
    /// See [`Firmware::request_reboot`].
    fn request_reboot(&mut self, arg: &str);
    /// See [`Firmware::power_cut`].
    fn power_cut(&mut self);
    /// See [`Firmware::power_on`].
    fn power_on(&mut self) -> Result<SlotName, StoreError>;
}

impl<S: Simulated + std::fmt::Debug + 'static> Machine for Device<S> {
    fn store(&self) -> &dyn BootStore {
        &self.store
    }
    fn store_mut(&mut self) -> &mut dyn BootStore {
        &mut self.store
    }
    fn request_reboot(&mut self, arg: &str) {
        Device::request_reboot(self, arg);
    }
    fn power_cut(&mut self) {
        Device::power_cut(self);
    }
    fn power_on(&mut self) -> Result<SlotName, StoreError> {
        Device::power_on(self)
    }
}

impl StoreSpec {
    /// Opens an existing store (as [`StoreSpec::open`] does) with its simulated
    /// bootloader, freshly powered: no reboot request is pending.
    pub fn open_simulated(&self) -> Result<Box<dyn Machine>, StoreError> {
        self.check_existing()?;
        Ok(match self {
            StoreSpec::Uboot {
                path,
                offset,
                size,
                redundant,
            } => Box::new(Device::new(UbootEnvStore::new(
                FileMedium::open(path)?,
                UbootLayout {
                    offset: *offset,
                    size: *size,
                    redundant: *redundant,
                },
            ))),
            StoreSpec::Grub { path } => {
                Box::new(Device::new(GrubEnvStore::new(FileMedium::open(path)?)))
            }
            StoreSpec::Gpt { disk, slots } => Box::new(Device::new(GptStore::new(
                FileMedium::open(disk)?,
                slots.clone(),
            ))),
            StoreSpec::Tryboot { dir, slots } => {
                Box::new(Device::new(TrybootStore::open_dir(dir, slots.clone())?))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_engine_asks_for_tryboot_only_right_after_beginning_a_trial() {
        let (a, b) = (SlotName::new("A").unwrap(), SlotName::new("B").unwrap());
        let mut s = BootState::new(&[a, b.clone()], 1).unwrap();
        assert_eq!(reboot_request(&s), None);
        s.begin_trial(&b).unwrap();
        assert_eq!(reboot_request(&s), Some(TRYBOOT_REBOOT_ARG));
        s.power_on().unwrap();
        // The trial's boot is used: the next reboot is a plain one.
        assert_eq!(reboot_request(&s), None);
    }
}
