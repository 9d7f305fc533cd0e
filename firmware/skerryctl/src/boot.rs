//! `skerryctl boot …`: offline A/B boot-state commands for manufacturing and debugging.
//!
//! Each command loads the store, applies one transition of the pure model, and commits
//! only if the model accepted it, so a refused or failed command writes nothing.
//! `status` only reads; every other command writes the store.

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use skerry_boot_state::{BootState, BootStore, SlotName, StoreSpec, MAX_TRIES};

use crate::boot_report::BootReport;
use crate::hints;
use crate::output::{emit, Output};

/// Attempts a trial gets unless `--tries` says otherwise (or the bootloader counts fewer).
const DEFAULT_TRIES: u8 = 3;

#[derive(Debug, Subcommand)]
pub enum BootCommand {
    /// Write a fresh boot state: the first slot good, the others bad (writes the store).
    #[command(
        after_help = "Examples:\n  skerryctl boot init --store uboot:/dev/mmcblk0boot0,offset=0x3e0000,size=0x10000,redundant\n  skerryctl boot init --store tryboot:/boot/firmware,A=2,B=3\n  skerryctl boot init --store grub:/boot/efi/EFI/BOOT/grubenv --force"
    )]
    Init {
        #[command(flatten)]
        store: StoreArg,
        /// Slot names, in initial boot order (GPT and tryboot take them from --store).
        #[arg(long, value_delimiter = ',')]
        slots: Option<Vec<SlotName>>,
        /// Boot attempts a slot on trial gets [default: 3, or fewer if the bootloader
        /// counts fewer: tryboot counts 1].
        #[arg(long)]
        tries: Option<u8>,
        /// Replace a store that already holds a valid boot state (its slots' history is lost).
        #[arg(long)]
        force: bool,
    },
    /// Print the slots in boot order, their state, and the slot the next power-on starts
    /// (only reads).
    #[command(
        after_help = "Example:\n  skerryctl boot status --store gpt:/dev/mmcblk0,A=2,B=3 --output json"
    )]
    Status {
        #[command(flatten)]
        store: StoreArg,
    },
    /// Start the trial of SLOT, whose new image was written and verified (writes the store).
    #[command(
        after_help = "Example:\n  skerryctl boot begin-trial B --store grub:/boot/efi/EFI/BOOT/grubenv"
    )]
    BeginTrial {
        /// The slot that holds the new image.
        slot: SlotName,
        #[command(flatten)]
        store: StoreArg,
    },
    /// Mark SLOT good: it booted and passed its health checks (writes the store). Marking
    /// the good slot you run while another slot is on trial ends that trial: the other
    /// slot is marked bad, and you stay where you are.
    #[command(
        after_help = "Example:\n  skerryctl boot mark-good B --store tryboot:/boot/firmware,A=2,B=3"
    )]
    MarkGood {
        /// The slot that booted and is healthy.
        slot: SlotName,
        #[command(flatten)]
        store: StoreArg,
        /// The installer's state (as for `skerryctl install --state`): the release
        /// installed into SLOT becomes its board's committed version, the one older
        /// releases are refused against.
        #[arg(long, value_name = "DIR")]
        state: Option<std::path::PathBuf>,
    },
    /// Mark SLOT bad, so the bootloader never starts it (writes the store).
    #[command(
        after_help = "Example:\n  skerryctl boot mark-bad B --store uboot:/boot/uboot.env,redundant"
    )]
    MarkBad {
        /// The slot the bootloader must skip.
        slot: SlotName,
        #[command(flatten)]
        store: StoreArg,
    },
    /// Set this device's kernel arguments (`skerry.join=…`, `skerry.logs=…`,
    /// `skerry.events=…`) in the boot environment, which the boot script appends to the
    /// kernel command line (writes the store; GRUB stores only).
    #[command(
        after_help = "Example:\n  skerryctl boot set-device-args --store grub:/boot/efi/EFI/BOOT/grubenv \\\n      'skerry.join=https://fleet.example.com/join?token=T1 skerry.logs=tcp://10.0.0.1:514'"
    )]
    SetDeviceArgs {
        #[command(flatten)]
        store: StoreArg,
        /// `skerry.KEY=VALUE` words separated by one space; anything else is refused.
        #[arg(required_unless_present = "clear", conflicts_with = "clear")]
        args: Option<String>,
        /// Remove the device arguments.
        #[arg(long)]
        clear: bool,
    },
    /// Do what the bootloader does at power-on and print the slot it starts (writes the
    /// store, as the bootloader does: a trial uses up one attempt).
    #[command(
        after_help = "Example:\n  skerryctl boot simulate-boot --store gpt:disk.img,A=2,B=3"
    )]
    SimulateBoot {
        #[command(flatten)]
        store: StoreArg,
        /// The argument of the `reboot` the system went down with: `0 tryboot` sets the
        /// Raspberry Pi firmware's one-shot tryboot flag (the other bootloaders ignore
        /// it). Without it, a power cycle.
        #[arg(long, value_name = "ARG")]
        after_reboot: Option<String>,
    },
}

#[derive(Debug, Args)]
pub struct StoreArg {
    /// Where the boot state lives: uboot:PATH[,offset=N][,size=N][,redundant] |
    /// grub:PATH | gpt:DISK,A=PARTNUM,B=PARTNUM | tryboot:DIR,A=PARTNUM,B=PARTNUM
    #[arg(long = "store", value_name = "STORE")]
    spec: StoreSpec,
}

pub fn run(cmd: BootCommand, output: Output) -> anyhow::Result<()> {
    match cmd {
        BootCommand::Init {
            store,
            slots,
            tries,
            force,
        } => init(&store.spec, slots, tries, force, output),
        BootCommand::Status { store } => {
            let state = load(&*open(&store.spec)?, &store.spec)?;
            emit(output, &BootReport::state(&state))
        }
        BootCommand::BeginTrial { slot, store } => {
            transition(&store.spec, output, |s| s.begin_trial(&slot))
        }
        BootCommand::MarkGood { slot, store, state } => {
            if let Some(dir) = &state {
                commit_installed(dir, &slot, false)?;
            }
            transition(&store.spec, output, |s| s.mark_good(&slot))?;
            match &state {
                Some(dir) => commit_installed(dir, &slot, true),
                None => Ok(()),
            }
        }
        BootCommand::MarkBad { slot, store } => {
            transition(&store.spec, output, |s| s.mark_bad(&slot))
        }
        BootCommand::SetDeviceArgs { store, args, .. } => {
            crate::device_args::set(&store.spec, args.as_deref())
        }
        BootCommand::SimulateBoot {
            store,
            after_reboot,
        } => {
            let mut device = store
                .spec
                .open_simulated()
                .with_context(|| format!("opening {}", store.spec))?;
            if let Some(arg) = &after_reboot {
                device.request_reboot(arg);
            }
            let slot = device
                .power_on()
                .map_err(|e| hints::store_error(&store.spec, e))
                .with_context(|| format!("simulating a power-on of {}", store.spec))?;
            let state = load(device.store(), &store.spec)?;
            emit(output, &BootReport::started(&slot, &state))
        }
    }
}

/// Reads the state, with a hint when the store's bytes suggest another spec.
fn load(store: &dyn BootStore, spec: &StoreSpec) -> anyhow::Result<BootState> {
    store
        .load()
        .map_err(|e| hints::store_error(spec, e))
        .with_context(|| format!("reading {spec}"))
}

fn open(spec: &StoreSpec) -> anyhow::Result<Box<dyn BootStore>> {
    spec.open().with_context(|| format!("opening {spec}"))
}

fn init(
    spec: &StoreSpec,
    slots: Option<Vec<SlotName>>,
    tries: Option<u8>,
    force: bool,
    output: Output,
) -> anyhow::Result<()> {
    let declared = spec.declared_slots();
    let slots = match (slots, declared.is_empty()) {
        (None, true) => vec![SlotName::new("A")?, SlotName::new("B")?],
        (None, false) => declared,
        (Some(given), true) => given,
        (Some(given), false) if given == declared => given,
        (Some(given), false) => bail!(
            "--slots {} does not match the slots in --store ({}); leave --slots out",
            join(&given),
            join(&declared)
        ),
    };
    let mut store = spec
        .open_for_init()
        .with_context(|| format!("opening {spec}"))?;
    if !force {
        if let Ok(existing) = store.load() {
            bail!(
                "{spec} already holds a valid boot state (slots {}; next power-on starts {}); \
                 pass --force to replace it, losing which slots are good",
                join(&existing.order().cloned().collect::<Vec<_>>()),
                existing
                    .next_boot()
                    .map_or_else(|| "nothing".to_string(), SlotName::to_string)
            );
        }
    }
    let max = store.max_tries().min(MAX_TRIES);
    let tries = tries.unwrap_or(DEFAULT_TRIES.min(max));
    if tries == 0 || tries > max {
        bail!(
            "--tries {tries} is out of range: this bootloader counts at least 1 and at most \
             {max} attempt(s) of a trial"
        );
    }
    let state = BootState::new(&slots, tries)?;
    store
        .commit(&state)
        .with_context(|| format!("writing {spec}"))?;
    emit(output, &BootReport::state(&state))
}

fn transition(
    spec: &StoreSpec,
    output: Output,
    change: impl FnOnce(&mut BootState) -> Result<(), skerry_boot_state::BootError>,
) -> anyhow::Result<()> {
    let mut store = open(spec)?;
    let mut state = load(&*store, spec)?;
    let before = state.clone();
    change(&mut state)?;
    store
        .commit(&state)
        .with_context(|| format!("writing {spec}"))?;
    emit(output, &BootReport::changed(&before, &state))
}

/// Checks (`record: false`) or records that the release installed into `slot`, per the
/// installer's state in `dir`, is now its board's committed version.
fn commit_installed(dir: &std::path::Path, slot: &SlotName, record: bool) -> anyhow::Result<()> {
    use skerry_installer::state::{load_slots, record_commit};
    match load_slots(dir)?.get(slot.as_str()) {
        None => bail!(
            "--state {} records no install into slot {slot} (install it with --slot-name {slot})",
            dir.display()
        ),
        Some(release) if release.partial => bail!(
            "slot {slot} holds an unfinished install of {} {} (rerun the install first)",
            release.board,
            release.version
        ),
        Some(_) => {}
    }
    if record {
        record_commit(dir, slot.as_str())?;
    }
    Ok(())
}

fn join(slots: &[SlotName]) -> String {
    slots
        .iter()
        .map(SlotName::as_str)
        .collect::<Vec<_>>()
        .join(",")
}
