//! Every store under the lossy page-cache model: after a power cut at every operation of
//! every commit, with any allowed subset of unflushed sectors and renames surviving,
//! `load` returns the old or the new state; and skipping any one flush or swapping any
//! two consecutive writes makes that check fail (so every flush a store does is needed).

use skerry_boot_state::gpt::{image, GptStore};
use skerry_boot_state::grub::GrubEnvStore;
use skerry_boot_state::power_loss::{every_fault_is_caught, power_loss_check, LossyHarness};
use skerry_boot_state::tryboot::{TrybootStore, AUTOBOOT_FILE};
use skerry_boot_state::uboot::{UbootEnvStore, UbootLayout};
use skerry_boot_state::SlotName;
use skerry_medium::lossy::{Faults, LossyFs, Mode};
use skerry_medium::FsMedium;

fn name(s: &str) -> SlotName {
    SlotName::new(s).unwrap()
}

fn ab() -> Vec<SlotName> {
    vec![name("A"), name("B")]
}

fn partitions() -> Vec<(SlotName, u32)> {
    vec![(name("A"), 2), (name("B"), 3)]
}

fn uboot(
    mode: Mode,
    redundant: bool,
) -> LossyHarness<
    UbootEnvStore<FsMedium<LossyFs>>,
    impl Fn(&LossyFs) -> UbootEnvStore<FsMedium<LossyFs>>,
> {
    // Four sectors per copy, so a copy can tear inside.
    let layout = UbootLayout {
        offset: 0,
        size: 0x800,
        redundant,
    };
    LossyHarness {
        open: move |fs: &LossyFs| {
            UbootEnvStore::new(FsMedium::in_dir(fs.clone(), "uboot.env"), layout)
        },
        blank: LossyFs::new(mode),
        slots: ab(),
    }
}

#[test]
fn uboot_redundant_env_survives_every_cut_and_needs_every_flush() {
    every_fault_is_caught(&uboot(Mode::Posix, true));
}

#[test]
fn uboot_redundant_env_on_fat_survives_every_cut() {
    every_fault_is_caught(&uboot(Mode::Fat, true));
}

#[test]
fn uboot_single_env_file_survives_every_cut_and_needs_every_flush() {
    every_fault_is_caught(&uboot(Mode::Posix, false));
}

#[test]
fn uboot_single_env_on_fat_is_not_power_safe() {
    // Without an atomic rename a single copy can tear: the model must see it.
    assert!(power_loss_check(&uboot(Mode::Fat, false), Faults::default()).is_err());
}

fn gpt_disk() -> Vec<u8> {
    // 16 entries: four sectors of entries, so an array can tear inside.
    image::chromeos_disk_with_entries(512, 24, 3, 1, 16).unwrap()
}

#[test]
fn gpt_survives_every_cut_and_needs_every_flush() {
    every_fault_is_caught(&LossyHarness {
        open: |fs: &LossyFs| GptStore::new(FsMedium::in_dir(fs.clone(), "disk.img"), partitions()),
        blank: LossyFs::new(Mode::Posix).with_file("disk.img", &gpt_disk()),
        slots: ab(),
    });
}

fn grub(
    mode: Mode,
) -> LossyHarness<
    GrubEnvStore<FsMedium<LossyFs>>,
    impl Fn(&LossyFs) -> GrubEnvStore<FsMedium<LossyFs>>,
> {
    LossyHarness {
        open: |fs: &LossyFs| GrubEnvStore::new(FsMedium::in_dir(fs.clone(), "grubenv")),
        blank: LossyFs::new(mode),
        slots: ab(),
    }
}

#[test]
fn grub_env_survives_every_cut_and_needs_every_flush() {
    every_fault_is_caught(&grub(Mode::Posix));
}

#[test]
fn grub_env_on_fat_survives_every_cut_and_needs_every_flush() {
    every_fault_is_caught(&grub(Mode::Fat));
}

#[test]
fn tryboot_on_fat_survives_every_cut_and_needs_every_flush() {
    every_fault_is_caught(&LossyHarness {
        open: |fs: &LossyFs| {
            TrybootStore::new(FsMedium::in_dir(fs.clone(), AUTOBOOT_FILE), partitions())
        },
        blank: LossyFs::new(Mode::Fat),
        slots: ab(),
    });
}

#[test]
fn uboot_redundant_env_growing_its_second_copy_survives_every_cut() {
    use skerry_boot_state::{BootState, BootStore, MemoryMedium};
    use skerry_medium::lossy::every_power_loss;
    let layout = UbootLayout {
        offset: 0,
        size: 0x800,
        redundant: true,
    };
    let old = BootState::new(&ab(), 3).unwrap();
    let mut new = old.clone();
    new.begin_trial(&name("B")).unwrap();
    // A file that holds only the first copy: the commit extends it by the second.
    let mut seed = UbootEnvStore::new(MemoryMedium::new(Vec::new()), layout);
    seed.commit(&old).unwrap();
    let first_copy = seed.into_medium().bytes()[..0x800].to_vec();
    let open = |fs: &LossyFs| UbootEnvStore::new(FsMedium::in_dir(fs.clone(), "uboot.env"), layout);
    let before = LossyFs::new(Mode::Posix).with_file("uboot.env", &first_copy);
    assert_eq!(open(&before).load().unwrap(), old);
    every_power_loss(
        &before,
        |fs| {
            let _ = open(fs).commit(&new);
        },
        |cut, fs| match open(fs).load() {
            Ok(s) if s == new || (s == old && !cut.completed()) => Ok(()),
            other => Err(format!("{other:?}")),
        },
        128,
    )
    .unwrap();
}
