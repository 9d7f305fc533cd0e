//! `skerryctl boot …`: offline A/B boot-state commands for manufacturing and debugging.
//!
//! Each command loads the store, applies one transition of the pure model, and commits
//! only if the model accepted it, so a refused or failed command writes nothing.

use anyhow::{bail, Context};
use clap::{Args, Subcommand, ValueEnum};
use skerry_boot_state::report::{slot_table, StatusReport};
use skerry_boot_state::{BootState, BootStore, SlotName, StoreSpec, MAX_TRIES};

#[derive(Debug, Subcommand)]
pub enum BootCommand {
    /// Write a fresh boot state: the first slot good, the others bad.
    Init {
        #[command(flatten)]
        store: StoreArg,
        /// Slot names, in initial boot order (GPT and tryboot take them from --store).
        #[arg(long, value_delimiter = ',')]
        slots: Option<Vec<SlotName>>,
        /// Boot attempts a slot on trial gets.
        #[arg(long, default_value_t = 3)]
        tries: u8,
    },
    /// Print the slots in boot order, their state, and the slot the next power-on starts.
    Status {
        #[command(flatten)]
        store: StoreArg,
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Start the trial of SLOT, whose new image was written and verified.
    BeginTrial {
        slot: SlotName,
        #[command(flatten)]
        store: StoreArg,
    },
    /// Mark SLOT good: it booted and passed its health checks.
    MarkGood {
        slot: SlotName,
        #[command(flatten)]
        store: StoreArg,
        /// The installer's state (as for `skerryctl install --state`): the release
        /// installed into SLOT becomes its board's committed version, the one older
        /// releases are refused against.
        #[arg(long, value_name = "DIR")]
        state: Option<std::path::PathBuf>,
    },
    /// Mark SLOT bad, so the bootloader never starts it.
    MarkBad {
        slot: SlotName,
        #[command(flatten)]
        store: StoreArg,
    },
    /// Do what the bootloader does at power-on; print the slot it starts.
    SimulateBoot {
        #[command(flatten)]
        store: StoreArg,
    },
}

#[derive(Debug, Args)]
pub struct StoreArg {
    /// uboot:PATH[,offset=N][,size=N][,redundant] | grub:PATH |
    /// gpt:DISK,A=PARTNUM,B=PARTNUM | tryboot:DIR,A=PARTNUM,B=PARTNUM
    #[arg(long = "store", value_name = "STORE")]
    spec: StoreSpec,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Output {
    Text,
    Json,
}

pub fn run(cmd: BootCommand) -> anyhow::Result<()> {
    match cmd {
        BootCommand::Init {
            store,
            slots,
            tries,
        } => init(&store.spec, slots, tries),
        BootCommand::Status { store, output } => {
            let state = open(&store.spec)?.load().context(store.spec.to_string())?;
            match output {
                Output::Text => print!("{}", slot_table(&state)),
                Output::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(&StatusReport::new(&state))?
                ),
            }
            Ok(())
        }
        BootCommand::BeginTrial { slot, store } => {
            transition(&store.spec, |s| s.begin_trial(&slot))
        }
        BootCommand::MarkGood { slot, store, state } => {
            if let Some(dir) = &state {
                commit_installed(dir, &slot, false)?;
            }
            transition(&store.spec, |s| s.mark_good(&slot))?;
            match &state {
                Some(dir) => commit_installed(dir, &slot, true),
                None => Ok(()),
            }
        }
        BootCommand::MarkBad { slot, store } => transition(&store.spec, |s| s.mark_bad(&slot)),
        BootCommand::SimulateBoot { store } => {
            let slot = open(&store.spec)?
                .simulate_power_on()
                .with_context(|| format!("simulating a power-on of {}", store.spec))?;
            println!("{slot}");
            Ok(())
        }
    }
}

fn open(spec: &StoreSpec) -> anyhow::Result<Box<dyn BootStore>> {
    spec.open().with_context(|| format!("opening {spec}"))
}

fn init(spec: &StoreSpec, slots: Option<Vec<SlotName>>, tries: u8) -> anyhow::Result<()> {
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
    let max = store.max_tries().min(MAX_TRIES);
    if tries == 0 || tries > max {
        bail!("--tries {tries} is out of range: this bootloader counts 1 to {max} attempts");
    }
    let state = BootState::new(&slots, tries)?;
    store
        .commit(&state)
        .with_context(|| format!("writing {spec}"))?;
    print!("{}", slot_table(&state));
    Ok(())
}

fn transition(
    spec: &StoreSpec,
    change: impl FnOnce(&mut BootState) -> Result<(), skerry_boot_state::BootError>,
) -> anyhow::Result<()> {
    let mut store = open(spec)?;
    let mut state = store.load().with_context(|| format!("reading {spec}"))?;
    change(&mut state)?;
    store
        .commit(&state)
        .with_context(|| format!("writing {spec}"))?;
    print!("{}", slot_table(&state));
    Ok(())
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
